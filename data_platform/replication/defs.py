"""Dagster side of replication: one asset per spec table (key `[<target schema>, <target
table>]`, group `replication`), a PostgresResource per spec connection, run metadata with the
copy's numbers, checks for count and checksum parity, and retries for connection errors only.
The work happens in the engine (`DataCopyEngine`); this module only maps it onto Dagster.
"""

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict
from typing import Any

import dagster as dg

from data_platform.core.postgres import PostgresError
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


def defs_from_environment(
    env: Mapping[str, str], reserved_resource_keys: Collection[str] = ()
) -> dg.Definitions:
    """The assets of ./replication.yaml (or $DATA_PLATFORM_REPLICATION_SPEC); none without it."""
    path = spec_path(env)
    if not path.is_file():
        return dg.Definitions()
    return defs(load_spec(path), reserved_resource_keys)


def defs(
    spec: ReplicationSpec,
    reserved_resource_keys: Collection[str] = (),
    retry_policy: dg.RetryPolicy = RETRY_POLICY,
) -> dg.Definitions:
    resources = {}
    for name, connection in spec.connections.items():
        if not _RESOURCE_KEY.match(name) or name in reserved_resource_keys:
            taken = ", ".join(sorted(reserved_resource_keys))
            raise SpecError(
                f"connection {name!r}: Dagster needs a resource name of letters, digits and _ "
                f"that is not one of {taken}; rename it"
            )
        resources[name] = connection_resource(connection)
    assets = [replication_asset(table, retry_policy) for table in spec.tables]
    return dg.Definitions(assets=assets, resources=resources)


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
    return dg.AssetKey([table.target_table.schema, table.target_table.name])


def replication_asset(
    table: TableSpec, retry_policy: dg.RetryPolicy = RETRY_POLICY
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
        yield dg.MaterializeResult(metadata=_metadata(result))
        yield from _checks(result)

    return dg.asset(
        key=key,
        group_name="replication",
        kinds={"postgres"},
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
        description=f"{table.target_table} ← {table.source_connection}:{table.source_table} "
        f"({table.strategy}"
        + (f", incremental by {table.watermark}" if table.watermark else "")
        + ")",
    )(_replicate)


def _metadata(result: CopyResult) -> dict[str, Any]:
    numbers = asdict(result)
    return {k: v for k, v in numbers.items() if v is not None and k not in ("status", "error")}


def _checks(result: CopyResult) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        check_name=CHECK_COUNTS,
        passed=result.staged_rows == result.source_rows,
        metadata={"source_rows": result.source_rows, "staged_rows": result.staged_rows},
    )
    if result.checksum_match is not None:
        yield dg.AssetCheckResult(check_name=CHECK_CHECKSUM, passed=result.checksum_match)
