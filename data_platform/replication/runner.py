"""Spec tables through the engine, for the CLI: every table gives a CopyResult (failed ones
carry the error text), so one bad table does not stop the others."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from data_platform.core.postgres import PostgresError, connection
from data_platform.replication.engine import CopyPlan, CopyResult, DataCopyEngine, ProgressCallback
from data_platform.replication.errors import ReplicationError
from data_platform.replication.spec import ReplicationSpec, TableSpec, connection_settings
from data_platform.replication.staging import Leftover, drop_leftovers, find_leftovers


def engine_for(
    spec: ReplicationSpec,
    table: TableSpec,
    env: Mapping[str, str],
    on_progress: ProgressCallback | None = None,
) -> DataCopyEngine:
    source = connection_settings(spec, table, "source", env)
    target = connection_settings(spec, table, "target", env)
    return DataCopyEngine(source, target, on_progress=on_progress)


def run_table(
    spec: ReplicationSpec,
    table: TableSpec,
    env: Mapping[str, str],
    on_progress: ProgressCallback | None = None,
) -> CopyResult:
    started = time.monotonic()
    try:
        engine = engine_for(spec, table, env, on_progress)
        result = engine.copy_with_staging_table(**table.copy_arguments())
    except (ReplicationError, PostgresError) as exc:
        seconds = round(time.monotonic() - started, 3)
        return CopyResult(
            table.name, table.strategy, seconds=seconds, status="failed", error=str(exc)
        )
    result.table = table.name
    return result


def plan_table(spec: ReplicationSpec, table: TableSpec, env: Mapping[str, str]) -> CopyPlan:
    plan = engine_for(spec, table, env).plan(**table.copy_arguments())
    plan.table = table.name
    return plan


@dataclass(frozen=True)
class SweptDatabase:
    connection: str
    leftovers: list[Leftover]


def sweep(
    spec: ReplicationSpec, env: Mapping[str, str], older_than: timedelta, dry_run: bool
) -> list[SweptDatabase]:
    """Drop (or only list) leftover staging tables in every target database of the spec."""
    swept = []
    done: set[str] = set()
    for table in spec.tables:
        if table.target_connection in done:
            continue
        done.add(table.target_connection)
        with connection(connection_settings(spec, table, "target", env)) as conn:
            leftovers = find_leftovers(conn, older_than)
            if not dry_run:
                drop_leftovers(conn, leftovers)
        swept.append(SweptDatabase(table.target_connection, leftovers))
    return swept
