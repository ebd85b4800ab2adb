"""Load one snapshot (all raw files of one year/month/region/sigungu) into its silver table.

One transaction per snapshot: a new standalone table is filled by COPY (FREEZE), then swapped in
for the snapshot's old partition (DROP old leaf, ATTACH new one). A crash at any point rolls the
transaction back, so readers see the old snapshot or the new one, never a mix; the old leaf is
dropped whole, so reloads leave no dead rows. An advisory lock on (table, snapshot) makes two
loaders of the same snapshot take turns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from data_platform.core.partitions import PartitionPathError, SnapshotKey
from data_platform.core.postgres import copy_from_stream, qualified, transaction
from data_platform.silver import tables
from data_platform.silver.copy_errors import describe_copy_error
from data_platform.silver.csv_reader import find_bad_byte
from data_platform.silver.decoding import UndecodableBytes
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import TablePreset
from data_platform.silver.readers import inspect_file, open_copy_input
from data_platform.silver.sources import SourceFile, check_snapshot
from data_platform.silver.swap import lock_holders, replace_rows, swap_partition

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.extensions import cursor as PgCursor

__all__ = [
    "FileLoad",
    "SilverLoadError",
    "SnapshotLoad",
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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: ProgressCallback | None = None,
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> SnapshotLoad:
    """Replace the snapshot's rows with the rows of `files`, atomically. Commits on success;
    on any error rolls back (the table keeps the old snapshot) and raises SilverLoadError.

    The final swap briefly locks the table; if other sessions hold it (say, a transaction left
    open) for longer than `lock_timeout_seconds`, the load fails naming them."""
    _check_files(snapshot, files)
    if conn.autocommit:
        raise ValueError("load_snapshot needs a connection with autocommit off")
    ensure_table(conn, preset)
    failed: dict[str, dict[str, UndecodableBytes]] = {}
    while True:
        try:
            with transaction(conn):
                result = _load_once(
                    conn,
                    preset,
                    snapshot,
                    files,
                    failed,
                    chunk_rows,
                    on_progress,
                    lock_timeout_seconds,
                )
        except _RetryWithNextEncoding:
            continue  # rolled back; the file is read again with its next candidate encoding
        log.info("loaded %s rows of %s into %s", result.rows, snapshot.path(), preset.table)
        return result


def _load_once(
    conn: PgConnection,
    preset: TablePreset,
    snapshot: SnapshotKey,
    files: Sequence[SourceFile],
    failed: dict[str, dict[str, UndecodableBytes]],
    chunk_rows: int,
    on_progress: ProgressCallback | None,
    lock_timeout_seconds: float,
) -> SnapshotLoad:
    leaf = tables.leaf_name(preset, snapshot)
    staging = tables.leaf_name(preset, snapshot, "_new")
    with conn.cursor() as cur:
        lock = tables.lock_key(preset.schema, preset.table, snapshot.path())
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        kind = tables.relation_kind(cur, preset.schema, preset.table)
        cur.execute(tables.create_staging_sql(preset, snapshot, staging))
        tables.check_same_columns(
            preset,
            tables.table_columns(cur, preset.schema, preset.table),
            tables.table_columns(cur, preset.schema, staging),
        )
    loads = [
        _copy_file(conn, preset, snapshot, staging, source, failed, chunk_rows, on_progress)
        for source in files
    ]
    with conn.cursor() as cur:
        # Waiting on the table's lock is all that is left; bounded so a forgotten open
        # transaction elsewhere cannot hang the load forever.
        timeout_ms = str(max(1, round(lock_timeout_seconds * 1000)))
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (timeout_ms,))
        cur.execute("SAVEPOINT silver_swap")
        try:
            if kind == "p":
                swap_partition(cur, preset, snapshot, leaf, staging)
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
    return SnapshotLoad(snapshot, sum(f.rows for f in loads), tuple(loads))


def _copy_file(
    conn: PgConnection,
    preset: TablePreset,
    snapshot: SnapshotKey,
    staging: str,
    source: SourceFile,
    failed: dict[str, dict[str, UndecodableBytes]],
    chunk_rows: int,
    on_progress: ProgressCallback | None,
) -> FileLoad:
    with open_copy_input(source, preset, failed.setdefault(source.name, {}), chunk_rows) as data:
        if on_progress is not None:
            data.stream.on_progress = lambda rows: on_progress(source.name, rows)
        statement = sql.SQL(
            "COPY {} ({}) FROM STDIN WITH (FORMAT csv, FREEZE true, ENCODING {})"
        ).format(
            qualified(preset.schema, staging),
            sql.SQL(", ").join(map(sql.Identifier, data.columns)),
            sql.Literal(data.pg_encoding),
        )
        try:
            rows = copy_from_stream(conn, statement, data.stream)
        except psycopg2.Error as exc:
            failure = data.stream.failure
            if isinstance(failure, UndecodableBytes):
                failed[source.name][failure.encoding] = failure
                raise _RetryWithNextEncoding from None
            if isinstance(failure, SilverLoadError):
                raise failure from None
            if failure is not None:
                raise SilverLoadError(f"{source.name}: {failure}") from failure
            if exc.pgcode in _ENCODING_ERRORS and data.encoding is not None:
                bad = find_bad_byte(source, data.encoding)
                if bad is not None:
                    failed[source.name][bad.encoding] = bad
                    raise _RetryWithNextEncoding from None
            raise SilverLoadError(describe_copy_error(exc, data, preset, snapshot)) from None
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


def null_snapshot_rows(conn: PgConnection, preset: TablePreset) -> int:
    """Rows of the whole table with a NULL snapshot column (partition bounds make this cheap)."""
    condition = sql.SQL(" OR ").join(
        sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in preset.snapshot_columns
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                qualified(preset.schema, preset.table), condition
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
