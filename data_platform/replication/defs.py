"""Dagster side of replication: one asset per spec table (key
`replication/<target schema>/<target schema>_<target table>`, group `replication`), a
PostgresResource per spec connection, run metadata with the copy's numbers, checks for count and
checksum parity, and retries for connection errors only.

Lineage: a table copied from a table this platform materializes (a silver table, parts prices)
depends on that asset and runs after it (automation condition); any other source is an external
asset `replication_sources/<connection>/<connection>_<schema>_<table>`.
The work happens in the engine (`DataCopyEngine`); this module only maps it onto Dagster.
"""

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

import dagster as dg

from data_platform.core.postgres import PostgresError
from data_platform.core.postgres import connection as pg_connection
from data_platform.dagster_common import (
    OWNER,
    PLATFORM_PG_VARIABLE,
    POSTGRES_POOL,
    after_upstream_update,
    asset_job,
    external_asset,
    postgres_table,
    row_count,
    table_schema,
    tags,
)
from data_platform.replication.catalog import read_shape
from data_platform.replication.engine import CopyResult, DataCopyEngine
from data_platform.replication.errors import IntegrityMismatchError, ReplicationError, SpecError
from data_platform.replication.spec import (
    ConnectionSpec,
    ReplicationSpec,
    TableSpec,
    load_spec,
    spec_path,
)
from data_platform.resources import PostgresResource

CHECK_COUNTS = "staged_rows_match_source"
CHECK_CHECKSUM = "target_checksum_matches_staged"
# Connection trouble is worth retrying; bad input (Failure with allow_retries=False) is not.
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
_RESOURCE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_NAME = "replication_job"


def defs_from_environment(
    env: Mapping[str, str],
    reserved_resource_keys: Collection[str] = (),
    platform_tables: Mapping[str, dg.AssetKey] | None = None,
) -> dg.Definitions:
    """The assets of ./replication.yaml (or $DATA_PLATFORM_REPLICATION_SPEC); none without it."""
    path = spec_path(env)
    if not path.is_file():
        return dg.Definitions()
    return defs(load_spec(path), reserved_resource_keys, platform_tables=platform_tables)


def defs(
    spec: ReplicationSpec,
    reserved_resource_keys: Collection[str] = (),
    retry_policy: dg.RetryPolicy = RETRY_POLICY,
    platform_tables: Mapping[str, dg.AssetKey] | None = None,
) -> dg.Definitions:
    """`platform_tables` maps `schema.table` of the platform's database to the asset writing it,
    so a copy of one of them depends on that asset."""
    resources = {}
    for name, connection in spec.connections.items():
        if not _RESOURCE_KEY.match(name) or name in reserved_resource_keys:
            taken = ", ".join(sorted(reserved_resource_keys))
            raise SpecError(
                f"connection {name!r}: Dagster needs a resource name of letters, digits and _ "
                f"that is not one of {taken}; rename it"
            )
        resources[name] = connection_resource(connection)
    on_platform = {n for n, c in spec.connections.items() if is_platform_database(c)}
    upstreams = {t.name: upstream_key(t, on_platform, platform_tables or {}) for t in spec.tables}
    assets: list[Any] = [
        replication_asset(table, retry_policy, upstreams[table.name], on_platform)
        for table in spec.tables
    ]
    assets += external_sources(t for t in spec.tables if upstreams[t.name] is None)
    job = asset_job(
        JOB_NAME,
        [asset_key(t) for t in spec.tables],
        "Copy every table of the replication spec into its target.",
    )
    return dg.Definitions(assets=assets, resources=resources, jobs=[job])


def is_platform_database(connection: ConnectionSpec) -> bool:
    """A spec connection that is the platform's own database (the shared `postgres`)."""
    return connection.url_template.strip() == f"${{{PLATFORM_PG_VARIABLE}}}"


def upstream_key(
    table: TableSpec, on_platform: Collection[str], platform_tables: Mapping[str, dg.AssetKey]
) -> dg.AssetKey | None:
    """The platform asset a table is copied from: named in the spec (`upstream:
    silver/silver_stage_1_main`), or found as a table of the platform's database that one of
    our assets writes; None for a source outside the platform."""
    named = getattr(table, "upstream", None)  # the spec's `upstream` key, where parsed
    if named:
        return dg.AssetKey.from_user_string(named)
    if table.source_connection in on_platform:
        return platform_tables.get(str(table.source_table))
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


def connection_resource(connection: ConnectionSpec) -> PostgresResource:
    """`${VAR}` becomes an EnvVar (Dagit shows its name, never the value)."""
    variables = connection.variables()
    if not variables:
        return PostgresResource(url=connection.url_template)
    if connection.url_template == f"${{{variables[0]}}}":
        return PostgresResource(url=dg.EnvVar(variables[0]))
    raise SpecError(
        f"connection {connection.name!r}: in Dagster the url must be one ${{VAR}} holding the "
        "whole URL (or a URL without variables)"
    )


def asset_key(table: TableSpec) -> dg.AssetKey:
    target = table.target_table
    return dg.AssetKey(["replication", target.schema, f"{target.schema}_{target.name}"])


def replication_asset(
    table: TableSpec,
    retry_policy: dg.RetryPolicy = RETRY_POLICY,
    upstream: dg.AssetKey | None = None,
    on_platform: Collection[str] = (),
) -> dg.AssetsDefinition:
    key = asset_key(table)

    def _replicate(context: dg.AssetExecutionContext) -> Iterator[Any]:
        source = getattr(context.resources, table.source_connection).settings()
        target = getattr(context.resources, table.target_connection).settings()
        engine = DataCopyEngine(source, target)
        try:
            result = engine.copy_with_staging_table(**table.copy_arguments())
        except IntegrityMismatchError as exc:
            if exc.numbers is not None:
                yield from _checks(exc.numbers)
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
        yield from _checks(result)

    return dg.asset(
        key=key,
        deps=[upstream or source_key(table)],
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
        metadata=postgres_table(str(table.target_table), None),
        required_resource_keys={table.source_connection, table.target_connection},
        retry_policy=retry_policy,
        check_specs=[
            dg.AssetCheckSpec(CHECK_COUNTS, asset=key, description="staged rows = source rows"),
            dg.AssetCheckSpec(
                CHECK_CHECKSUM,
                asset=key,
                description="target rows of the staged keys = staged rows (checksum)",
            ),
        ],
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


def _checks(result: CopyResult) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        check_name=CHECK_COUNTS,
        passed=result.staged_rows == result.source_rows,
        metadata={"source_rows": result.source_rows, "staged_rows": result.staged_rows},
    )
    if result.checksum_match is not None:
        yield dg.AssetCheckResult(check_name=CHECK_CHECKSUM, passed=result.checksum_match)
