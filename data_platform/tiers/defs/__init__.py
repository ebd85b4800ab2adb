"""Dagster side of the tiers: per provider, the raw 10-minute snapshots (external) feed a daily
hot tier (`tiers/<provider>/<provider>_hot`, every 10 minutes) and a monthly warm tier
(`tiers/<provider>/<provider>_warm`, after each hot day); `assets`, `checks`, `automation`,
merged by `defs()` with the `tiers_store` resource and the jobs."""

from collections.abc import Sequence

import dagster as dg

from data_platform.dagster_common import asset_job
from data_platform.resources import AwsSessionResource
from data_platform.tiers.defs.assets import (
    TiersStoreResource,
    conflict_backoff,
    hot_asset,
    hot_key,
    raw_snapshots_key,
    raw_snapshots_spec,
    warm_asset,
    warm_key,
)

__all__ = [
    "HOT_JOB",
    "WARM_JOB",
    "TiersStoreResource",
    "conflict_backoff",
    "defs",
    "hot_key",
    "raw_snapshots_key",
    "warm_key",
]

START_DATE = "2026-01-01"
HOT_JOB = "tiers_hot_job"
WARM_JOB = "tiers_warm_job"


def defs(providers: Sequence[str] = ("aws", "azure", "gcp")) -> dg.Definitions:
    """Assets, checks and jobs per provider, and the `tiers_store` resource
    (DATA_PLATFORM_TIERS_URL, read when a run starts)."""
    daily = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
    monthly = dg.MonthlyPartitionsDefinition(start_date=START_DATE, end_offset=1)
    assets: list = []
    for provider in providers:
        assets += [
            raw_snapshots_spec(provider),
            hot_asset(provider, daily),
            warm_asset(provider, monthly),
        ]
    jobs = [
        asset_job(HOT_JOB, map(hot_key, providers), "Hot tier files of one day."),
        asset_job(WARM_JOB, map(warm_key, providers), "Compact one month's hot files."),
    ]
    store = TiersStoreResource(url=dg.EnvVar("DATA_PLATFORM_TIERS_URL"), aws=AwsSessionResource())
    return dg.Definitions(assets=assets, jobs=jobs, resources={"tiers_store": store})
