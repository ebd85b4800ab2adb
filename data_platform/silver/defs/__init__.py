"""Dagster side of silver: raw files as external assets observed by a sensor on new S3 keys,
silver tables partitioned month x area, checks against the raw files, batched backfills and one
job per dataset. The work happens in the engine (`discovery`, `sources`, `loader`); this package
only maps it onto Dagster: `assets`, `checks`, `automation` (the sensor), merged by `defs()`.

Both assets of a dataset use its MultiPartitionsDefinition: `month` (monthly, the current month
included) x `area` (dynamic, `<region>~<sigungu>`; see core.partitions.area_key).
"""

import logging
import warnings
from collections.abc import Mapping, Sequence

import dagster as dg

from data_platform.dagster_common import asset_job
from data_platform.silver.defs.assets import (
    FIRST_MONTH,
    MAX_PARTITIONS_PER_RUN,
    SENSOR_NAME,
    area_partitions,
    partition_key,
    raw_key,
    raw_spec,
    silver_asset,
    silver_key,
    silver_partitions,
    snapshot_of,
)
from data_platform.silver.defs.automation import raw_files_sensor
from data_platform.silver.defs.checks import CHECK_CURRENT, CHECK_ROWS
from data_platform.silver.discovery import DiscoveryLimits
from data_platform.silver.presets import PresetError, TablePreset, list_presets, user_presets_dir

__all__ = [
    "CHECK_CURRENT",
    "CHECK_ROWS",
    "FIRST_MONTH",
    "MAX_PARTITIONS_PER_RUN",
    "SENSOR_NAME",
    "area_partitions",
    "configured_presets",
    "defs",
    "job_name",
    "partition_key",
    "raw_key",
    "silver_key",
    "silver_partitions",
    "snapshot_of",
]

log = logging.getLogger(__name__)


def configured_presets(env: Mapping[str, str]) -> list[TablePreset]:
    """Built-in presets and those in DATA_PLATFORM_PRESETS_DIR (default ./presets, relative to
    where Dagster starts). A malformed preset file is logged and warned about, and skipped: one
    bad file must not stop the whole code location from loading."""

    def report(error: PresetError) -> None:
        log.warning("skipped a table preset: %s", error)
        warnings.warn(f"skipped a table preset: {error}", UserWarning, stacklevel=2)

    return list_presets(user_presets_dir(env), on_error=report)


def job_name(dataset: str) -> str:
    """`silver_<dataset>_job` (a leading `silver_` of the dataset is not repeated): one job per
    dataset, since each dataset has its own area partitions."""
    return f"silver_{dataset.removeprefix('silver_')}_job"


def defs(
    presets: Sequence[TablePreset] | None = None,
    limits: DiscoveryLimits | None = None,
) -> dg.Definitions:
    """Assets, checks, jobs and the sensor for `presets` (default: every preset); no resources."""
    chosen = list(presets) if presets is not None else list_presets()
    if not chosen:
        return dg.Definitions()
    by_dataset: dict[str, list[TablePreset]] = {}
    for preset in chosen:
        by_dataset.setdefault(preset.dataset, []).append(preset)
    partitions = {dataset: silver_partitions(dataset) for dataset in by_dataset}
    jobs = [
        asset_job(
            job_name(dataset),
            [silver_key(p) for p in presets_of],
            f"Load month x area snapshots of the raw `{dataset}` files into Postgres.",
        )
        for dataset, presets_of in by_dataset.items()
    ]
    return dg.Definitions(
        assets=[
            *(raw_spec(dataset, partitions[dataset]) for dataset in by_dataset),
            *(silver_asset(p, partitions[p.dataset]) for p in chosen),
        ],
        sensors=[raw_files_sensor(by_dataset, limits or DiscoveryLimits())],
        jobs=jobs,
    )
