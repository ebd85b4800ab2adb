"""The sensor on new raw keys: a bounded listing per tick with a durable cursor of per-partition
fingerprints; it adds area partitions, observes the raw asset and requests the silver partitions.
It stays a sensor (no AutomationCondition sees S3 keys)."""

from collections.abc import Sequence

import dagster as dg

from data_platform.core.partitions import parse_snapshot
from data_platform.resources import ObjectStoreResource
from data_platform.silver.defs.assets import (
    FIRST_MONTH,
    SENSOR_NAME,
    area_partitions,
    partition_key,
    raw_key,
    silver_key,
)
from data_platform.silver.discovery import (
    DiscoveryLimits,
    PartitionChange,
    RawPartition,
    discover,
)
from data_platform.silver.discovery_state import load_cursor, store_cursor
from data_platform.silver.presets import TablePreset

SENSOR_INTERVAL_SECONDS = 30
MAX_LAYOUT_WARNINGS = 20  # per tick; the rest are counted
MAX_KEYS_IN_METADATA = 1000  # keys listed in a raw observation (`files` counts them all)


def raw_files_sensor(
    by_dataset: dict[str, list[TablePreset]], limits: DiscoveryLimits
) -> dg.SensorDefinition:
    datasets = sorted(by_dataset)

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        asset_selection=[silver_key(p) for group in by_dataset.values() for p in group],
        description="Finds new, changed and deleted raw files (bounded listing per tick, durable "
        "cursor of per-partition fingerprints) and requests the silver partitions they feed.",
    )
    def silver_raw_files(
        context: dg.SensorEvaluationContext, raw_store: ObjectStoreResource
    ) -> dg.SensorResult:
        # Fingerprints live in the instance's key-value store, written only when they change;
        # Dagster's cursor keeps the resume points and names the stored state (see
        # discovery_state): Dagster copies the cursor into every tick record.
        state_store = context.instance.daemon_cursor_storage
        cursor = load_cursor(context.cursor, state_store, SENSOR_NAME)
        month_def = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1)
        last_month = month_def.get_last_partition_key() or FIRST_MONTH
        result = discover(raw_store.store(), datasets, cursor, limits, (FIRST_MONTH, last_month))
        for problem in result.new_problems[:MAX_LAYOUT_WARNINGS]:
            context.log.warning(f"skipped raw key {problem.key!r}: {problem.rule}")
        if len(result.new_problems) > MAX_LAYOUT_WARNINGS:
            context.log.warning(f"... and {len(result.new_problems) - MAX_LAYOUT_WARNINGS} more")
        if len(result.problems) > len(result.new_problems):
            repeated = len(result.problems) - len(result.new_problems)
            context.log.info(f"{repeated} raw keys still break the layout (reported before)")
        for dataset, path in result.removed:
            context.log.info(f"raw/{dataset} {path}: every file is gone; silver rows are kept")
        removed = [RawPartition(ds, parse_snapshot(path), ()) for ds, path in result.removed]
        known_areas = {
            ds: set(context.instance.get_dynamic_partitions(area_partitions(ds).name or ""))
            for ds in {change.partition.dataset for change in result.changes}
        }
        new_areas: dict[str, set[str]] = {}
        for change in result.changes:
            area = change.partition.snapshot.area_key
            if area not in known_areas[change.partition.dataset]:
                new_areas.setdefault(change.partition.dataset, set()).add(area)
        summary = f"listed {result.keys_listed} keys, {len(result.changes)} changed partitions"
        context.log.info(summary)
        return dg.SensorResult(
            run_requests=[run_request(c, by_dataset[c.partition.dataset]) for c in result.changes],
            skip_reason=None if result.changes else f"no new or changed raw files ({summary})",
            dynamic_partitions_requests=[
                area_partitions(ds).build_add_request(sorted(areas))
                for ds, areas in sorted(new_areas.items())
            ],
            asset_events=[
                observation(p) for p in [*(c.partition for c in result.changes), *removed]
            ],
            cursor=store_cursor(result.cursor, context.cursor, state_store, SENSOR_NAME),
        )

    return silver_raw_files


def run_request(change: PartitionChange, presets: Sequence[TablePreset]) -> dg.RunRequest:
    partition = change.partition
    return dg.RunRequest(
        run_key=change.run_key,
        partition_key=partition_key(partition.snapshot),
        asset_selection=[silver_key(p) for p in presets],
        tags={"silver/dataset": partition.dataset, "silver/fingerprint": partition.fingerprint},
    )


def observation(partition: RawPartition) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=raw_key(partition.dataset),
        partition=partition_key(partition.snapshot),
        metadata={
            "files": len(partition.files),
            "bytes": sum(f.size for f in partition.files),
            "fingerprint": partition.fingerprint,
            "keys": dg.MetadataValue.json(
                [
                    {"key": f.key, "size": f.size, "etag": f.etag}
                    for f in partition.files[:MAX_KEYS_IN_METADATA]
                ]
            ),
        },
    )
