"""Load one snapshot (all raw files of one year/month/region/sigungu) into its silver table.

1. Under a session advisory lock on (table, snapshot), so two loaders of a snapshot take turns:
   drop what a killed load of this snapshot left behind, create the staging table (a standalone
   table shaped like a leaf, with a CHECK on the snapshot columns) and commit it, so that
2. several COPY streams, each on its own connection, can fill it (`parallel_copy`);
3. in one transaction, swap it in for the snapshot's old partition (DROP old leaf, ATTACH new).
Readers see the old snapshot or the new one, never a mix: staging rows are invisible to the
silver table until the swap commits. A crash anywhere leaves the old snapshot and at most a
staging table, which the next load of the snapshot drops; any other failure drops it at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from data_platform.core.partitions import PartitionPathError, SnapshotKey
from data_platform.core.pg_errors import safe_message
from data_platform.core.postgres import qualified, transaction
from data_platform.silver import tables
from data_platform.silver.copy_errors import describe_copy_error
from data_platform.silver.csv_reader import find_bad_byte
from data_platform.silver.decoding import UndecodableBytes
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.parallel_copy import CopyStreamError, copy_in_parallel, streams_for
from data_platform.silver.presets import TablePreset
from data_platform.silver.readers import inspect_file, open_copy_input
from data_platform.silver.sources import SourceFile, check_snapshot
from data_platform.silver.streams import CopyCancelled
from data_platform.silver.swap import lock_holders, replace_rows, swap_partition

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.extensions import cursor as PgCursor

__all__ = [
    "FileLoad",
    "SilverLoadError",
    "SnapshotLoad",
    "default_jobs",
    "ensure_table",
    "load_snapshot",
    "plan_snapshot",
    "snapshot_row_count",
    "table_size_bytes",
]

log = logging.getLogger(__name__)
DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
_ENCODING_ERRORS = ("22021", "22P05")  # invalid byte sequence, untranslatable character
ProgressCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class FileLoad:
    name: str
    rows: int
    encoding: str | None  # the text encoding used (utf-8-sig, utf-8, cp949); None for Parquet
    file_format: str


@dataclass(frozen=True)
class SnapshotLoad:
    snapshot: SnapshotKey
    rows: int
    files: tuple[FileLoad, ...]


def default_jobs() -> int:
    """COPY streams per file when not told: one per core, at least 2 (Postgres parses each
    stream in its own backend; two streams copied 1.5x as fast as one here)."""
    return max(2, os.cpu_count() or 1)


class _RetryWithNextEncoding(Exception):
    """A CSV file turned out not to be in the encoding its first bytes suggested."""


def ensure_table(conn: PgConnection, preset: TablePreset) -> None:
    """Create the schema and the partitioned table when missing (and commit); an existing table
    must have the preset's columns."""
    with transaction(conn), conn.cursor() as cur:
        cur.execute(
            "SELECT pg_advisory_xact_lock(%s)", (tables.lock_key(preset.schema, preset.table),)
        )
        cur.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", (preset.schema,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(preset.schema)))
        kind = tables.relation_kind(cur, preset.schema, preset.table)
        if kind is None:
            cur.execute(tables.create_parent_sql(preset))
            log.info("created table %s.%s", preset.schema, preset.table)
            return
        _check_existing(cur, preset, kind)


def _check_existing(cur: PgCursor, preset: TablePreset, kind: str) -> None:
    where = f"{preset.schema}.{preset.table}"
    if kind not in ("p", "r"):
        raise SilverLoadError(f"{where} exists but is not a table (relkind {kind!r})")
    tables.check_same_columns(preset, tables.table_columns(cur, preset.schema, preset.table))
    if kind == "p":
        strategy, key = tables.partition_columns(cur, preset.schema, preset.table)
        if strategy != "r" or tuple(key) != preset.snapshot_columns:
            raise SilverLoadError(
                f"{where} is partitioned by {key} ({strategy}), not by RANGE "
                f"{list(preset.snapshot_columns)}; rename it and let the loader create the table."
            )


def _check_files(snapshot: SnapshotKey, files: Sequence[SourceFile]) -> None:
    if not files:
        raise SilverLoadError(
            f"no files for snapshot {snapshot.path()}; refusing to replace it with nothing "
            "(drop its partition by hand if the snapshot should go)"
        )
    try:
        check_snapshot(snapshot, files)
    except PartitionPathError as exc:
        raise SilverLoadError(str(exc)) from None


def load_snapshot(
    conn: PgConnection,
    preset: TablePreset,
    snapshot: SnapshotKey,
    files: Sequence[SourceFile],
    *,
    copy_connections: Sequence[PgConnection] = (),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: ProgressCallback | None = None,
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    allow_empty: bool = False,
) -> SnapshotLoad:
    """Replace the snapshot's rows with the rows of `files`, atomically; COPY runs on `conn`
    and every connection of `copy_connections` at once (all with autocommit off). On any error
    the table keeps the old snapshot and SilverLoadError is raised. Files without a data row
    are refused unless `allow_empty`.

    The final swap briefly locks the table; if other sessions hold it (say, a transaction left
    open) for longer than `lock_timeout_seconds`, the load fails naming them."""
    _check_files(snapshot, files)
    connections = [conn, *copy_connections]
    if any(c.autocommit for c in connections):
        raise ValueError("load_snapshot needs connections with autocommit off")
    for c in connections:
        if c.encoding != "UTF8":
            # Binary COPY reads text values in the client encoding. (Switching it ends any open
            # transaction, as ensure_table's commit below would.)
            c.set_client_encoding("UTF8")
    where = f"{snapshot.path()} into {preset.schema}.{preset.table}"
    try:
        ensure_table(conn, preset)
        with _snapshot_lock(conn, preset, snapshot):
            result = _load_locked(
                connections,
                preset,
                snapshot,
                files,
                chunk_rows,
                on_progress,
                allow_empty,
                lock_timeout_seconds,
            )
    except psycopg2.Error as exc:
        raise SilverLoadError(
            f"{where}: {safe_message(exc)}. The snapshot is unchanged; fix the cause "
            "(a permission, a name in use) and load again."
        ) from None
    log.info("loaded %s rows of %s into %s", result.rows, snapshot.path(), preset.table)
    return result


@contextlib.contextmanager
def _snapshot_lock(
    conn: PgConnection, preset: TablePreset, snapshot: SnapshotKey
) -> Iterator[None]:
    """A session advisory lock (it outlives the load's transactions; a dead client's backend
    ends and releases it)."""
    key = tables.lock_key(preset.schema, preset.table, snapshot.path())
    with transaction(conn), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        yield
    finally:
        if not conn.closed:
            conn.rollback()
            with transaction(conn), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _load_locked(
    connections: list[PgConnection],
    preset: TablePreset,
    snapshot: SnapshotKey,
    files: Sequence[SourceFile],
    chunk_rows: int,
    on_progress: ProgressCallback | None,
    allow_empty: bool,
    lock_timeout_seconds: float,
) -> SnapshotLoad:
    conn = connections[0]
    staging = tables.leaf_name(preset, snapshot, "_new")
    failed: dict[str, dict[str, UndecodableBytes]] = {}
    try:
        while True:
            kind = _create_staging(conn, preset, snapshot, staging)
            try:
                loads = [
                    _copy_file(
                        connections, preset, snapshot, staging, f, failed, chunk_rows, on_progress
                    )
                    for f in files
                ]
            except _RetryWithNextEncoding:
                continue  # a new staging table; the file is read with its next candidate encoding
            break
        rows = sum(f.rows for f in loads)
        if rows == 0 and not allow_empty:
            raise SilverLoadError(
                f"{snapshot.path()}: the files hold no data rows (header only?); refusing to "
                "empty the snapshot. Load with --allow-empty (allow_empty=True) if it should be."
            )
        with transaction(conn):
            _swap(conn, preset, snapshot, kind, staging, lock_timeout_seconds)
    except BaseException:
        _drop_staging(conn, preset, staging)
        raise
    return SnapshotLoad(snapshot, rows, tuple(loads))


def _create_staging(
    conn: PgConnection, preset: TablePreset, snapshot: SnapshotKey, staging: str
) -> str | None:
    """A fresh, committed staging table; returns the silver table's relkind."""
    with transaction(conn), conn.cursor() as cur:
        # A load of this snapshot killed before its swap left this table behind (we hold the
        # snapshot's lock, so no live load is using it).
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(preset.schema, staging)))
        kind = tables.relation_kind(cur, preset.schema, preset.table)
        cur.execute(tables.create_staging_sql(preset, snapshot, staging))
        tables.check_same_columns(
            preset,
            tables.table_columns(cur, preset.schema, preset.table),
            tables.table_columns(cur, preset.schema, staging),
        )
    return kind


def _drop_staging(conn: PgConnection, preset: TablePreset, staging: str) -> None:
    """Best effort after a failure; what stays (connection lost) goes with the next load."""
    try:
        conn.rollback()
        with transaction(conn), conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(preset.schema, staging))
            )
    except psycopg2.Error as exc:
        log.warning("could not drop staging table %s (%s); the next load drops it", staging, exc)


def _swap(
    conn: PgConnection,
    preset: TablePreset,
    snapshot: SnapshotKey,
    kind: str | None,
    staging: str,
    lock_timeout_seconds: float,
) -> None:
    with conn.cursor() as cur:
        # Waiting on the table's lock is all that is left; bounded so a forgotten open
        # transaction elsewhere cannot hang the load forever.
        timeout_ms = str(max(1, round(lock_timeout_seconds * 1000)))
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (timeout_ms,))
        cur.execute("SAVEPOINT silver_swap")
        try:
            if kind == "p":
                swap_partition(cur, preset, snapshot, tables.leaf_name(preset, snapshot), staging)
            else:
                replace_rows(cur, preset, snapshot, staging)
        except psycopg2.errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT silver_swap")
            raise SilverLoadError(
                f"{snapshot.path()}: {preset.schema}.{preset.table} stayed locked by other "
                f"sessions for {lock_timeout_seconds:g} s ({lock_holders(cur, preset)}); the "
                "snapshot is unchanged. End those sessions (or their open transactions) and "
                "load again."
            ) from None


def _copy_file(
    connections: list[PgConnection],
    preset: TablePreset,
    snapshot: SnapshotKey,
    staging: str,
    source: SourceFile,
    failed: dict[str, dict[str, UndecodableBytes]],
    chunk_rows: int,
    on_progress: ProgressCallback | None,
) -> FileLoad:
    progress = None if on_progress is None else functools.partial(on_progress, source.name)
    with open_copy_input(source, preset, failed.setdefault(source.name, {}), chunk_rows) as data:
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT {}, ENCODING {})").format(
            qualified(preset.schema, staging),
            sql.SQL(", ").join(map(sql.Identifier, data.columns)),
            sql.Literal(data.copy_format),
            sql.Literal(data.pg_encoding),
        )
        try:
            streams = connections[: streams_for(data, source.size, len(connections))]
            rows = copy_in_parallel(streams, statement, data, progress)
        except CopyStreamError as stopped:
            failure, exc = stopped.stream.failure, stopped.error
            if isinstance(failure, UndecodableBytes):
                failed[source.name][failure.encoding] = failure
                raise _RetryWithNextEncoding from None
            if isinstance(failure, SilverLoadError):
                raise failure from None
            if failure is not None and not isinstance(failure, CopyCancelled):
                raise SilverLoadError(f"{source.name}: {failure}") from failure
            if not isinstance(exc, psycopg2.Error):
                raise exc from None
            if exc.pgcode in _ENCODING_ERRORS and data.encoding is not None:
                bad = find_bad_byte(source, data.encoding)
                if bad is not None:
                    failed[source.name][bad.encoding] = bad
                    raise _RetryWithNextEncoding from None
            taken = stopped.stream.taken
            raise SilverLoadError(describe_copy_error(exc, data, taken, preset, snapshot)) from None
    if on_progress is not None:
        on_progress(source.name, rows)
    return FileLoad(source.name, rows, data.encoding, data.file_format)


def snapshot_row_count(conn: PgConnection, preset: TablePreset, snapshot: SnapshotKey) -> int:
    """Rows the table holds for the snapshot (0 when the table does not exist)."""
    with conn.cursor() as cur:
        if tables.relation_kind(cur, preset.schema, preset.table) is None:
            return 0
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                qualified(preset.schema, preset.table), tables.snapshot_condition(preset, snapshot)
            )
        )
        return int(cur.fetchone()[0])


def table_size_bytes(conn: PgConnection, preset: TablePreset) -> int:
    """pg_total_relation_size summed over the table and all its partitions."""
    with conn.cursor() as cur:
        if tables.relation_kind(cur, preset.schema, preset.table) is None:
            return 0
        cur.execute(
            "SELECT coalesce(sum(pg_catalog.pg_total_relation_size(relid)), 0)"
            " FROM pg_catalog.pg_partition_tree(%s::regclass)",
            (qualified(preset.schema, preset.table).as_string(cur),),
        )
        return int(cur.fetchone()[0])


def plan_snapshot(
    preset: TablePreset, snapshot: SnapshotKey, files: Sequence[SourceFile]
) -> SnapshotLoad:
    """Dry run: read every file (columns, encoding, ragged rows, row count; Parquet types), no
    database. Values themselves (numbers, dates, snapshot columns) are checked by Postgres
    during a real load."""
    _check_files(snapshot, files)
    loads = []
    for source in files:
        encoding, rows = inspect_file(source, preset)
        loads.append(FileLoad(source.name, rows, encoding, source.file_format))
    return SnapshotLoad(snapshot, sum(f.rows for f in loads), tuple(loads))
