"""Dagster side of silver: raw files as observed assets, silver tables partitioned month x area,
a sensor on new S3 keys, checks against the raw files and batched backfills. The work happens in
the engine (`discovery`, `sources`, `loader`); this module only maps it onto Dagster.

One raw asset per dataset (`raw/<dataset>`), observed by the sensor with the keys, sizes and etags
of each partition; one silver asset per table preset (`silver/<preset>`), depending on its raw
asset. Both use the dataset's MultiPartitionsDefinition: `month` (monthly, the current month
included) x `area` (dynamic, `<region>~<sigungu>`; see core.partitions.area_key).
"""

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from data_platform.core.partitions import SnapshotKey, parse_area_key, parse_snapshot
from data_platform.resources import ObjectStoreResource, PostgresResource
from data_platform.silver.discovery import (
    DiscoveryLimits,
    PartitionChange,
    RawPartition,
    discover,
    list_partition_files,
    partition_prefix,
)
from data_platform.silver.discovery_state import load_cursor, store_cursor
from data_platform.silver.presets import (
    PresetError,
    TablePreset,
    list_presets,
    user_presets_dir,
)

if TYPE_CHECKING:
    from data_platform.core.objectstore import ObjectStore
    from data_platform.silver.sources import SourceFile

log = logging.getLogger(__name__)
FIRST_MONTH = "2010-01-01"  # months before this are reported by the sensor, not loaded
MAX_PARTITIONS_PER_RUN = 8  # a backfill run loads up to 8 snapshots, one after the other
SENSOR_INTERVAL_SECONDS = 30
MAX_LAYOUT_WARNINGS = 20  # per tick; the rest are counted
MAX_KEYS_IN_METADATA = 1000  # keys listed in a raw observation (`files` counts them all)
SENSOR_NAME = "silver_raw_files"
CHECK_ROWS = "rows_match_files"
CHECK_CURRENT = "loaded_files_are_current"


def raw_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", dataset])


def silver_key(preset: TablePreset) -> dg.AssetKey:
    return dg.AssetKey(["silver", preset.name])


def area_partitions(dataset: str) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name="silver_area_" + re.sub(r"\W", "_", dataset))


def silver_partitions(dataset: str) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            "month": dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1),
            "area": area_partitions(dataset),
        }
    )


def partition_key(snapshot: SnapshotKey) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"month": snapshot.month_key, "area": snapshot.area_key})


def snapshot_of(key: str | dg.MultiPartitionKey) -> SnapshotKey:
    """The snapshot a month x area partition key (or its `area|month` string) stands for."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = silver_partitions("any").get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    region, sigungu = parse_area_key(dims["area"])
    return SnapshotKey(int(dims["month"][:4]), int(dims["month"][5:7]), region, sigungu)


def configured_presets(env: Mapping[str, str]) -> list[TablePreset]:
    """Built-in presets and those in DATA_PLATFORM_PRESETS_DIR (default ./presets, relative to
    where Dagster starts). A malformed preset file is logged and warned about, and skipped: one
    bad file must not stop the whole code location from loading."""

    def report(error: PresetError) -> None:
        log.warning("skipped a table preset: %s", error)
        warnings.warn(f"skipped a table preset: {error}", UserWarning, stacklevel=2)

    return list_presets(user_presets_dir(env), on_error=report)


def defs(
    presets: Sequence[TablePreset] | None = None,
    limits: DiscoveryLimits | None = None,
) -> dg.Definitions:
    """Assets, checks and the sensor for `presets` (default: every preset); no resources."""
    chosen = list(presets) if presets is not None else list_presets()
    if not chosen:
        return dg.Definitions()
    by_dataset: dict[str, list[TablePreset]] = {}
    for preset in chosen:
        by_dataset.setdefault(preset.dataset, []).append(preset)
    partitions = {dataset: silver_partitions(dataset) for dataset in by_dataset}
    raw_specs = [
        dg.AssetSpec(
            raw_key(dataset),
            partitions_def=partitions[dataset],
            group_name="raw",
            kinds={"s3"},
            description=f"Raw files under <raw store>/{dataset}/year=/month=/region=/sigungu=/; "
            "observed by the silver_raw_files sensor (keys, sizes, etags per partition).",
        )
        for dataset in by_dataset
    ]
    silver_assets = [silver_asset(p, partitions[p.dataset]) for p in chosen]
    sensor = raw_files_sensor(by_dataset, limits or DiscoveryLimits())
    return dg.Definitions(assets=[*raw_specs, *silver_assets], sensors=[sensor])


def silver_asset(preset: TablePreset, partitions_def: dg.PartitionsDefinition) -> Any:
    key = silver_key(preset)

    def _silver(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        raw_store: ObjectStoreResource,
    ) -> Iterator[Any]:
        yield from load_partitions(context, preset, postgres, raw_store)

    with warnings.catch_warnings():  # backfill_policy is "beta" in 1.13 but what we want
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.asset(
            key=key,
            deps=[raw_key(preset.dataset)],
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN),
            check_specs=[
                dg.AssetCheckSpec(
                    CHECK_ROWS,
                    asset=key,
                    description="Rows in Postgres = rows in the raw files, counted apart from "
                    "the load (Parquet footers, a quote-aware scan of CSV bytes)",
                ),
                dg.AssetCheckSpec(
                    CHECK_CURRENT,
                    asset=key,
                    description="After the load, the partition's raw files are still the ones "
                    "loaded (same keys and etags): no file came, went or changed meanwhile",
                ),
            ],
            group_name="silver",
            kinds={"postgres"},
            description=f"{preset.schema}.{preset.table}: one atomic snapshot per month x area, "
            f"loaded from raw/{preset.dataset} with table preset {preset.name!r}.",
        )(_silver)


def load_partitions(
    context: dg.AssetExecutionContext,
    preset: TablePreset,
    postgres: PostgresResource,
    raw_store: ObjectStoreResource,
) -> Iterator[Any]:
    """Load every snapshot of the run's partition (range), then check each against its files."""
    from data_platform.silver.loader import default_jobs, load_snapshot, snapshot_row_count
    from data_platform.silver.readers import count_source_rows

    store = raw_store.store()
    loaded: dict[str, dict[str, Any]] = {}
    mismatches: dict[str, dict[str, int]] = {}
    changed: dict[str, dict[str, list[str]]] = {}
    with contextlib.ExitStack() as stack:
        conn, *extra = [stack.enter_context(postgres.connect()) for _ in range(default_jobs())]
        for key in context.partition_keys:
            snapshot = snapshot_of(key)
            files = _partition_sources(store, preset, snapshot)
            if not files:
                raise dg.Failure(
                    f"no {preset.file_format} raw files under {store!r} "
                    f"{partition_prefix(preset.dataset, snapshot.path())}: nothing to load. "
                    "Upload the files (or pick another partition), run again."
                )
            result = load_snapshot(conn, preset, snapshot, files, copy_connections=extra)
            in_postgres = snapshot_row_count(conn, preset, snapshot)
            in_files = sum(count_source_rows(source) for source in files)
            if in_postgres != in_files:
                mismatches[key] = {"rows_in_files": in_files, "rows_in_postgres": in_postgres}
            difference = _file_changes(files, _partition_sources(store, preset, snapshot))
            if difference:
                changed[key] = difference
            loaded[key] = {
                "rows": result.rows,
                "files": [
                    {"key": f.name, "rows": f.rows, "encoding": f.encoding, "etag": s.etag}
                    for f, s in zip(result.files, files, strict=True)
                ],
            }
            context.log.info(f"{key}: {result.rows} rows from {len(files)} files")
    total = sum(item["rows"] for item in loaded.values())
    yield dg.MaterializeResult(
        metadata={
            "rows": total,
            "snapshots": len(loaded),
            "table": f"{preset.schema}.{preset.table}",
            "loaded": dg.MetadataValue.json(loaded),
        }
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_ROWS,
        passed=not mismatches,
        metadata={"rows_loaded": total, "mismatches": dg.MetadataValue.json(mismatches)},
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_CURRENT,
        passed=not changed,
        metadata={"changed_during_load": dg.MetadataValue.json(changed)},
    )


def _partition_sources(
    store: "ObjectStore", preset: TablePreset, snapshot: SnapshotKey
) -> "list[SourceFile]":
    from data_platform.silver.sources import object_source, wanted

    partition = list_partition_files(store, preset.dataset, snapshot)
    return [
        object_source(store, info)
        for info in partition.files
        if wanted(info.key, preset.file_format)
    ]


def _file_changes(before: "list[SourceFile]", after: "list[SourceFile]") -> dict[str, list[str]]:
    """Keys added, removed or rewritten (other etag) between two listings; {} when none."""
    old = {f.name: f.etag for f in before}
    new = {f.name: f.etag for f in after}
    difference = {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "rewritten": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
    }
    return {kind: keys for kind, keys in difference.items() if keys}


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
