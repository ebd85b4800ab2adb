"""Silver assets: raw files (`raw/raw_<dataset>`, external, observed by the sensor) and one
Postgres table per preset (`silver/<preset>`), partitioned month x area."""

import contextlib
import re
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import dagster as dg

from data_platform.core.objectstore import ObjectStoreError
from data_platform.core.partitions import SnapshotKey, parse_area_key
from data_platform.core.postgres import PostgresError
from data_platform.dagster_common import (
    OWNER,
    POSTGRES_POOL,
    external_asset,
    failure_on,
    postgres_table,
    row_count,
    tags,
)
from data_platform.resources import ObjectStoreResource, PostgresResource
from data_platform.silver.defs.checks import check_results, check_specs, file_changes
from data_platform.silver.discovery import list_partition_files, partition_prefix
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import TablePreset

if TYPE_CHECKING:
    from data_platform.core.objectstore import ObjectStore
    from data_platform.silver.sources import SourceFile

FIRST_MONTH = "2010-01-01"  # months before this are reported by the sensor, not loaded
MAX_PARTITIONS_PER_RUN = 8  # a backfill run loads up to 8 snapshots, one after the other
SENSOR_NAME = "silver_raw_files"


def raw_key(dataset: str) -> dg.AssetKey:
    """`raw/raw_<dataset>`: the label differs from the silver table's, even where a preset is
    named like its dataset."""
    return dg.AssetKey(["raw", f"raw_{dataset}"])


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


def raw_spec(dataset: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetSpec:
    return external_asset(
        raw_key(dataset),
        partitions_def=partitions_def,
        group="raw",
        kind="s3",
        domain="silver",
        layer="raw",
        description=f"Raw files of `{dataset}` in the raw store, under "
        f"`{dataset}/year=YYYY/month=M/region=…/sigungu=…/`; observed by the "
        f"{SENSOR_NAME} sensor (keys, sizes, etags per partition). Written by the producers "
        "outside the platform.",
    )


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
            check_specs=check_specs(key, partitions_def),
            # One materialization per loaded partition (a backfill run loads a range), each with
            # its own row count: events, not one output for the whole range.
            output_required=False,
            group_name="silver",
            kinds={"postgres"},
            owners=[OWNER],
            tags=tags("silver", "silver"),
            pool=POSTGRES_POOL,
            metadata=postgres_table(
                f"{preset.schema}.{preset.table}", [(c.name, c.pg_type) for c in preset.columns]
            ),
            description=f"`{preset.schema}.{preset.table}`: one atomic snapshot per month x "
            f"area, loaded from raw files of `{preset.dataset}` with table preset "
            f"`{preset.name}`.",
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
    mismatches: dict[str, dict[str, int]] = {}
    changed: dict[str, dict[str, list[str]]] = {}
    total = 0
    with (
        failure_on((SilverLoadError, ObjectStoreError, PostgresError)),
        contextlib.ExitStack() as stack,
    ):
        conn, *extra = [stack.enter_context(postgres.connect()) for _ in range(default_jobs())]
        for key in context.partition_keys:
            snapshot = snapshot_of(key)
            files = partition_sources(store, preset, snapshot)
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
            difference = file_changes(files, partition_sources(store, preset, snapshot))
            if difference:
                changed[key] = difference
            total += result.rows
            yield dg.AssetMaterialization(
                asset_key=silver_key(preset),
                partition=key,
                metadata={
                    **row_count(result.rows),
                    "files": dg.MetadataValue.json(
                        [
                            {"key": f.name, "rows": f.rows, "encoding": f.encoding, "etag": s.etag}
                            for f, s in zip(result.files, files, strict=True)
                        ]
                    ),
                },
            )
            context.log.info(f"{key}: {result.rows} rows from {len(files)} files")
    yield from check_results(total, mismatches, changed)


def partition_sources(
    store: "ObjectStore", preset: TablePreset, snapshot: SnapshotKey
) -> "list[SourceFile]":
    from data_platform.silver.sources import object_source, wanted

    partition = list_partition_files(store, preset.dataset, snapshot)
    return [
        object_source(store, info)
        for info in partition.files
        if wanted(info.key, preset.file_format)
    ]
