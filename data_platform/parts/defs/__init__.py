"""Dagster side of parts: each supplier's site (external) feeds six stages under
`parts/parts_<stage>` partitioned day (Asia/Seoul) x supplier, run at 02:00 Seoul time by an
automation condition (latest day only, no catch-up), with a run-failure sensor posting the run's
Dagit link; `assets`, `resources`, `automation`, merged by `defs()` with the job."""

from collections.abc import Sequence

import dagster as dg

from data_platform.dagster_common import asset_job
from data_platform.parts.defs.assets import (
    PRICES_TABLE,
    STAGES,
    asset_key,
    partition_of,
    parts_partitions,
    site_key,
    site_spec,
    stage_asset,
)
from data_platform.parts.defs.automation import CRON, SENSOR_NAME, TIMEZONE, failure_sensor
from data_platform.parts.defs.resources import PartsResource, supplier_codes

__all__ = [
    "CRON",
    "JOB_NAME",
    "PRICES_TABLE",
    "SENSOR_NAME",
    "STAGES",
    "TIMEZONE",
    "PartsResource",
    "asset_key",
    "defs",
    "partition_of",
    "site_key",
]

JOB_NAME = "parts_job"


def defs(suppliers: Sequence[str] | None = None) -> dg.Definitions:
    """Assets, job and failure sensor; suppliers default to the config files' codes."""
    codes = sorted(suppliers if suppliers is not None else supplier_codes())
    if not codes:
        return dg.Definitions()
    partitions = parts_partitions(codes)
    keys = [asset_key(stage) for stage in STAGES]
    job = asset_job(JOB_NAME, keys, "One day of one supplier: every parts stage in order.")
    return dg.Definitions(
        assets=[
            *(site_spec(code) for code in codes),
            *(stage_asset(stage, partitions, codes) for stage in STAGES),
        ],
        jobs=[job],
        sensors=[failure_sensor(keys)],
        resources={"parts": PartsResource()},
    )
