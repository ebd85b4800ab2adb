"""Replication assets: one per spec table, downstream of the platform asset it copies or of an
external asset naming its source."""

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any, NamedTuple

import dagster as dg

from data_platform.core.postgres import PostgresError
from data_platform.core.postgres import connection as pg_connection
from data_platform.dagster_common import (
    OWNER,
    POSTGRES_POOL,
    after_upstream_update,
    external_asset,
    postgres_table,
    row_count,
    table_schema,
    tags,
)
from data_platform.replication.catalog import read_shape
from data_platform.replication.defs.checks import check_results, check_specs
from data_platform.replication.engine import CopyResult, DataCopyEngine
from data_platform.replication.errors import IntegrityMismatchError, ReplicationError
from data_platform.replication.spec import TableSpec

# Connection trouble is worth retrying; bad input (Failure with allow_retries=False) is not.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


class Upstream(NamedTuple):
    """The platform asset a table is copied from, and its columns when it declares them."""

    key: dg.AssetKey
    column_schema: dg.TableSchema | None = None


def upstream_of(
    table: TableSpec, on_platform: Collection[str], platform_tables: Mapping[str, dg.AssetSpec]
) -> Upstream | None:
    """Named in the spec (`upstream: silver/silver_stage_1_main`), or found as a table of the
    platform's database that one of our assets writes; None for a source outside the platform."""
    if table.upstream:
        return Upstream(dg.AssetKey.from_user_string(table.upstream))
    spec = platform_tables.get(str(table.source_table))
    if table.source_connection in on_platform and spec is not None:
        return Upstream(spec.key, spec.metadata.get("dagster/column_schema"))
    return None


def source_key(table: TableSpec) -> dg.AssetKey:
    source = table.source_table
    name = f"{table.source_connection}_{source.schema}_{source.name}"
    return dg.AssetKey(["replication_sources", table.source_connection, name])


def external_sources(tables: Iterable[TableSpec]) -> list[dg.AssetSpec]:
    """One external asset per source table outside the platform (several copies may share one)."""
    specs: dict[dg.AssetKey, dg.AssetSpec] = {}
    for table in tables:
        key = source_key(table)
        specs[key] = external_asset(
            key,
            domain="replication",
            layer="source",
            kind="postgres",
            metadata={"dagster/table_name": str(table.source_table)},
            description=f"`{table.source_table}` on connection `{table.source_connection}`: "
            "a source table the platform reads but does not write.",
        )
    return list(specs.values())


def asset_key(table: TableSpec) -> dg.AssetKey:
    target = table.target_table
    return dg.AssetKey(["replication", target.schema, f"{target.schema}_{target.name}"])


def replication_asset(
    table: TableSpec,
    retry_policy: dg.RetryPolicy = RETRY_POLICY,
    upstream: Upstream | None = None,
    on_platform: Collection[str] = (),
) -> dg.AssetsDefinition:
    """Columns are known at load when the source is a platform table declaring them (a new
    target copies the source's columns); otherwise the materialization reads them from the
    target's catalog."""
    key = asset_key(table)
    metadata = postgres_table(str(table.target_table), None)
    if upstream is not None and upstream.column_schema is not None:
        metadata["dagster/column_schema"] = upstream.column_schema

    def _replicate(context: dg.AssetExecutionContext) -> Iterator[Any]:
        source = getattr(context.resources, table.source_connection).settings()
        target = getattr(context.resources, table.target_connection).settings()
        engine = DataCopyEngine(source, target)
        try:
            result = engine.copy_with_staging_table(**table.copy_arguments())
        except IntegrityMismatchError as exc:
            if exc.numbers is not None:
                yield from check_results(exc.numbers)
            raise dg.Failure(str(exc), allow_retries=False) from None
        except ReplicationError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        except PostgresError as exc:  # connection trouble: the retry policy takes it
            raise dg.Failure(str(exc)) from None
        context.log.info(
            f"{table.name}: {result.staged_rows} staged, {result.inserted} inserted, "
            f"{result.updated} updated, {result.deleted} deleted in {result.seconds}s"
        )
        with pg_connection(target) as conn:
            shape = read_shape(conn, table.target_table)
        metadata = _metadata(result)
        if shape is not None:
            columns = [(c.name, c.type) for c in shape.columns]
            metadata["dagster/column_schema"] = table_schema(columns)
        yield dg.MaterializeResult(metadata=metadata)
        yield from check_results(result)

    return dg.asset(
        key=key,
        deps=[upstream.key if upstream else source_key(table)],
        automation_condition=after_upstream_update() if upstream else None,
        group_name="replication",
        kinds={"postgres"},
        owners=[OWNER],
        tags=tags("replication", "serving"),
        pool=(
            POSTGRES_POOL
            if table.target_connection in on_platform
            else f"postgres_{table.target_connection}"
        ),
        metadata=metadata,
        required_resource_keys={table.source_connection, table.target_connection},
        retry_policy=retry_policy,
        check_specs=check_specs(key),
        description=f"`{table.target_table}` ← `{table.source_connection}:{table.source_table}` "
        f"({table.strategy}"
        + (f", incremental by {table.watermark}" if table.watermark else "")
        + ")",
    )(_replicate)


def _metadata(result: CopyResult) -> dict[str, Any]:
    """The copy's numbers; the target's rows under Dagster's `dagster/row_count`."""
    numbers = asdict(result)
    dropped = ("status", "error", "table", "target_rows")
    metadata = {k: v for k, v in numbers.items() if v is not None and k not in dropped}
    return {**row_count(result.target_rows), **metadata}
