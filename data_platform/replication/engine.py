"""DataCopyEngine: one source table into one target table through a staging table.

The source is read in one REPEATABLE READ snapshot (count, high-water mark and rows agree). The
target does everything in one transaction: create the table if missing, stage, check keys, merge,
verify counts and checksums, store the watermark, commit. Any failure, or the death of this
process, rolls all of it back; the TEMP staging table goes with the transaction. Where a large
share of the target changes, the rows go into a fresh table that is swapped in instead, in the
same transaction (`swap.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from data_platform.core.postgres import PostgresError, PostgresSettings, as_settings, connect
from data_platform.replication.catalog import (
    Column,
    TableShape,
    check_target_fits,
    create_table_sql,
    read_shape,
    resolve_key,
)
from data_platform.replication.errors import (
    IntegrityMismatchError,
    ReplicationError,
    SchemaMismatchError,
    db_error_line,
)
from data_platform.replication.integrity import (
    check_keys,
    checksum,
    compare_staged_with_written,
    use_comparable_text,
)
from data_platform.replication.spec import NULL_WATERMARKS, STRATEGIES, Lookback
from data_platform.replication.staging import create_staging
from data_platform.replication.strategies import strategy_statements
from data_platform.replication.streaming import source_query, stream_copy
from data_platform.replication.swap import (
    SwapPlan,
    build_indexes,
    carry_over,
    create_fresh_table,
    rebuild_pays,
    swap_blockers,
    swap_in,
)
from data_platform.replication.tables import TableRef, parse_table_ref
from data_platform.replication.watermark import (
    load_watermark,
    null_rows_filter,
    read_from,
    store_watermark,
    watermark_filter,
)

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable

log = logging.getLogger(__name__)

# Set before the session's first TEMP table: staging stays in memory up to this size.
STAGING_TEMP_BUFFERS = "256MB"
# For this transaction only: hash joins over 1 M staged rows spill to disk with the default
# 4MB (measured once: DELETE ... USING 0.89 s vs 0.75 s; MERGE the same either way).
MERGE_WORK_MEM = "256MB"

ProgressCallback = Callable[[str, int], None]  # (phase, bytes copied so far)


@dataclass
class CopyResult:
    table: str
    strategy: str
    source_rows: int = 0
    staged_rows: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    target_rows: int = 0
    checksum_match: bool | None = None
    seconds: float = 0.0
    verify_seconds: float = 0.0  # of `seconds`: the count and checksum checks
    status: str = "ok"
    error: str | None = None
    created_target: bool = False
    high_water: str | None = None
    read_from: str | None = None  # the lowest watermark read: the last mark minus the lookback
    null_watermark: str | None = None  # include or skip, with a watermark
    watermark_nulls: int | None = None  # source rows whose watermark is NULL (after `where`)
    skipped_rows: int = 0  # of those, the rows not copied (null_watermark: skip)
    # into an existing target: "swap" (a fresh table swapped in), else "truncate+insert: <why>"
    # (replace) or "in place: <why>"
    method: str | None = None


@dataclass
class CopyPlan:
    """What a run would do (`--dry-run`): read from the catalogs and one count, nothing changed."""

    table: str
    strategy: str
    columns: list[str]
    primary_key: list[str]
    source_rows: int
    target_exists: bool
    copy_format: str
    watermark: str | None = None
    since: str | None = None
    read_from: str | None = None
    null_watermark: str | None = None
    watermark_nulls: int | None = None
    skipped_rows: int = 0
    method: str | None = None  # as CopyResult.method: how an existing target would change


@dataclass
class _Prepared:
    source_ref: TableRef
    target_ref: TableRef
    shape: TableShape
    key: tuple[str, ...]
    target_shape: TableShape | None
    binary: bool
    watermark: str | None = None
    since: str | None = None  # the last run's mark
    read_from: str | None = None  # since minus the lookback
    null_watermark: str = "include"

    def watermark_condition(self) -> Composable | None:
        if not self.watermark:
            return None
        return watermark_filter(self.watermark, self.read_from, self.null_watermark)


class DataCopyEngine:
    """Copies tables from `source` to `target` (URLs or PostgresSettings)."""

    def __init__(
        self,
        source: str | PostgresSettings,
        target: str | PostgresSettings,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.source = as_settings(source)
        self.target = as_settings(target)
        self.on_progress = on_progress

    def __repr__(self) -> str:
        return f"DataCopyEngine(source={self.source.url()!r}, target={self.target.url()!r})"

    def copy_with_staging_table(
        self,
        source_table: str | TableRef,
        target_table: str | TableRef,
        primary_keys: list[str] | tuple[str, ...] | None = None,
        where_condition: str | None = None,
        strategy: str = "merge",
        watermark: str | None = None,
        lookback: Lookback | None = None,
        null_watermark: str = "include",
    ) -> CopyResult:
        """Copy, merge with `strategy`, verify, commit. Raises ReplicationError (bad input: not
        worth retrying) or PostgresError (connection trouble); the target is then unchanged.

        With `watermark`, only rows at or after the last mark minus `lookback` are read, and
        rows whose watermark is NULL are copied every run (`null_watermark="include"`) or
        never (`"skip"`, counted in `skipped_rows`)."""
        _check_options(strategy, watermark, null_watermark)
        started = time.monotonic()
        with _connections(self.source, self.target) as (src, tgt):
            with tgt.cursor() as cur:
                cur.execute("SET temp_buffers = %s", (STAGING_TEMP_BUFFERS,))
                cur.execute("SET LOCAL work_mem = %s", (MERGE_WORK_MEM,))
            _lock_target(tgt, _ref(target_table))
            prep = self._prepare(src, tgt, source_table, target_table, primary_keys)
            _prepare_watermark(src, tgt, prep, watermark, lookback, null_watermark)
            _prepare_target(tgt, prep, strategy)
            result = CopyResult(
                str(prep.target_ref), strategy, created_target=prep.target_shape is None
            )
            self._copy_and_merge(src, tgt, prep, where_condition, strategy, result)
            tgt.commit()
        result.seconds = round(time.monotonic() - started, 3)
        log.info(
            "%s: %s staged, %s inserted, %s updated in %.2fs",
            result.table,
            result.staged_rows,
            result.inserted,
            result.updated,
            result.seconds,
        )
        return result

    def plan(
        self,
        source_table: str | TableRef,
        target_table: str | TableRef,
        primary_keys: list[str] | tuple[str, ...] | None = None,
        where_condition: str | None = None,
        strategy: str = "merge",
        watermark: str | None = None,
        lookback: Lookback | None = None,
        null_watermark: str = "include",
    ) -> CopyPlan:
        """What `copy_with_staging_table` would do, without changing anything. The target's
        side (creating a missing target, a staging table) runs in a transaction that is rolled
        back, so the plan fails where the run would (a type missing in the target, rights)."""
        _check_options(strategy, watermark, null_watermark)
        with _connections(self.source, self.target) as (src, tgt):
            prep = self._prepare(src, tgt, source_table, target_table, primary_keys)
            _prepare_watermark(src, tgt, prep, watermark, lookback, null_watermark)
            _prepare_target(tgt, prep, strategy)
            create_staging(tgt, _staging_columns(prep))
            tgt.rollback()
            method = self._method(src, tgt, prep, strategy, where_condition)
            rows, _, nulls = _count_source(src, prep, where_condition)
            if prep.key != prep.shape.primary_key:  # the run checks staging; these are its rows
                _check_source_keys(src, prep, where_condition)
        return CopyPlan(
            table=str(prep.target_ref),
            strategy=strategy,
            columns=list(prep.shape.column_names),
            primary_key=list(prep.key),
            source_rows=rows,
            target_exists=prep.target_shape is not None,
            copy_format="binary" if prep.binary else "text",
            watermark=watermark,
            since=prep.since,
            read_from=prep.read_from,
            null_watermark=null_watermark if watermark else None,
            watermark_nulls=nulls,
            skipped_rows=_skipped(prep, nulls),
            method=method,
        )

    def _prepare(
        self,
        src: PgConnection,
        tgt: PgConnection,
        source_table: str | TableRef,
        target_table: str | TableRef,
        primary_keys: list[str] | tuple[str, ...] | None,
    ) -> _Prepared:
        source_ref, target_ref = _ref(source_table), _ref(target_table)
        shape = read_shape(src, source_ref)
        if shape is None:
            raise SchemaMismatchError(f"source table {source_ref} does not exist")
        key = resolve_key(shape, tuple(primary_keys) if primary_keys else None, source_ref)
        target_shape = read_shape(tgt, target_ref)
        binary = True
        if target_shape is not None:
            binary = check_target_fits(tgt, shape, target_shape, target_ref)
        return _Prepared(source_ref, target_ref, shape, key, target_shape, binary)

    def _copy_and_merge(
        self,
        src: PgConnection,
        tgt: PgConnection,
        prep: _Prepared,
        where: str | None,
        strategy: str,
        result: CopyResult,
    ) -> None:
        columns = prep.shape.column_names
        staging_columns = _staging_columns(prep)
        high_water = None
        if prep.watermark:
            _, high_water, result.watermark_nulls = _count_source(src, prep, where)
            result.null_watermark, result.read_from = prep.null_watermark, prep.read_from
            result.skipped_rows = _skipped(prep, result.watermark_nulls)
        result.method = self._method(src, tgt, prep, strategy, where)
        swap = create_fresh_table(tgt, prep.target_ref) if result.method == "swap" else None
        if result.method not in (None, "swap"):
            log.info("%s: %s", result.table, result.method)
        staging = swap.fresh.sql() if swap else create_staging(tgt, staging_columns).sql()
        self._report("copying", 0)
        query = source_query(prep.source_ref, columns, where, prep.watermark_condition())
        result.source_rows, result.staged_rows = stream_copy(
            src,
            query,
            tgt,
            staging,
            columns,
            prep.binary,
            lambda done: self._report("copying", done),
        )
        if swap is None:
            src.rollback()  # the snapshot is no longer needed; release it early
        if result.staged_rows != result.source_rows:
            raise IntegrityMismatchError(
                f"{result.table}: staged {result.staged_rows} rows but "
                f"the source sent {result.source_rows}",
                result,
            )
        self._report("merging", 0)
        if prep.key != prep.shape.primary_key:  # the source's own key cannot repeat
            check_keys(tgt, staging, prep.key, f"source {prep.source_ref}")
        if swap is not None:
            self._finish_swap(src, tgt, swap, query, staging_columns, prep.key, result)
            return
        target = prep.target_ref.sql()
        before = _count(tgt, target)
        with tgt.cursor() as cur:
            for statement in strategy_statements(strategy, target, staging, columns, prep.key):
                cur.execute(statement)
        self._report("verifying", 0)
        verifying = time.monotonic()
        check = compare_staged_with_written(tgt, staging, target, staging_columns)
        result.verify_seconds = round(time.monotonic() - verifying, 3)
        result.target_rows = check.target_rows
        if strategy == "replace":
            result.inserted, result.deleted = result.staged_rows, before
        else:
            result.inserted = result.target_rows - before
            result.updated = result.staged_rows - result.inserted
        result.checksum_match = check.matches and (
            strategy != "replace" or result.target_rows == result.staged_rows
        )
        if not result.checksum_match:
            raise IntegrityMismatchError(
                f"{result.table}: after the {strategy}, {check.written_rows} rows written for "
                f"{check.staged_rows} staged ({check.target_rows} in the target), checksum "
                f"{check.written_checksum} vs {check.staged_checksum}; rolled back",
                result,
            )
        if prep.watermark:
            result.high_water = high_water or prep.since
            if result.high_water is not None:
                store_watermark(tgt, prep.target_ref, prep.watermark, result.high_water)

    def _method(
        self,
        src: PgConnection,
        tgt: PgConnection,
        prep: _Prepared,
        strategy: str,
        where: str | None,
    ) -> str | None:
        """How an existing target changes: "swap", or the other way and why (None: no target).
        `replace` swaps whenever the target can be carried over whole; the other strategies
        also need the key unique in the target (then all four end alike), no watermark or
        `where`, and a source large enough against the target."""
        if prep.target_shape is None:
            return None
        blockers = []
        if strategy != "replace":
            if prep.watermark or where:
                blockers.append("incremental or filtered source")
            elif not prep.target_shape.is_unique(prep.key):
                blockers.append("key not unique in the target")
            elif not rebuild_pays(src, prep.source_ref, tgt, prep.target_ref):
                blockers.append("few source rows for the target's size (estimated)")
        if not prep.binary:  # the source-side checksum needs the target's very types
            blockers.append("column types that differ from the source's")
        if not blockers:
            blockers = swap_blockers(tgt, prep.target_ref)
        if blockers:
            way = "truncate+insert" if strategy == "replace" else "in place"
            return f"{way}: {', '.join(blockers)}"
        return "swap"

    def _finish_swap(
        self,
        src: PgConnection,
        tgt: PgConnection,
        swap: SwapPlan,
        query: Composable,
        columns: list[Column],
        key: tuple[str, ...],
        result: CopyResult,
    ) -> None:
        """Carry over the target's unstaged rows (not for replace), build the indexes, check
        the fresh table against the source's checksum (in the source's snapshot, computed
        meanwhile on the source's server) plus the rows carried over, then swap."""
        from psycopg2 import sql

        use_comparable_text(src)
        use_comparable_text(tgt)
        with ThreadPoolExecutor(1, thread_name_prefix="replication-source-checksum") as pool:
            source_sum = pool.submit(checksum, src, sql.SQL("({})").format(query), columns)
            before = _count(tgt, swap.target.sql())
            kept = (0, 0) if result.strategy == "replace" else carry_over(tgt, swap, columns, key)
            build_indexes(tgt, swap)
            self._report("verifying", 0)
            verifying = time.monotonic()
            written = checksum(tgt, swap.fresh.sql(), columns)
            staged = source_sum.result()
            result.verify_seconds = round(time.monotonic() - verifying, 3)
        src.rollback()
        expected = (staged[0] + kept[0], staged[1] ^ kept[1])
        result.target_rows = written[0]
        if result.strategy == "replace":
            result.inserted, result.deleted = written[0], before
        else:
            result.updated = before - kept[0]
            result.inserted = result.staged_rows - result.updated
        result.checksum_match = written == expected
        if not result.checksum_match:
            raise IntegrityMismatchError(
                f"{result.table}: the fresh table holds {written[0]} rows with checksum "
                f"{written[1]}; the source sent {staged[0]} and {kept[0]} were kept, together "
                f"{expected[0]} with {expected[1]}; rolled back",
                result,
            )
        swap_in(tgt, swap)

    def _report(self, phase: str, done: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, done)


def _prepare_watermark(
    src: PgConnection,
    tgt: PgConnection,
    prep: _Prepared,
    watermark: str | None,
    lookback: Lookback | None,
    null_watermark: str,
) -> None:
    """The last mark and where this run reads from (nothing without a watermark)."""
    if not watermark:
        return
    column = next((c for c in prep.shape.columns if c.name == watermark), None)
    if column is None:
        raise SchemaMismatchError(f"watermark column {watermark!r} is not in {prep.source_ref}")
    prep.watermark, prep.null_watermark = watermark, null_watermark
    prep.since = load_watermark(tgt, prep.target_ref, watermark)
    prep.read_from = read_from(src, column, prep.since, lookback)


def _prepare_target(tgt: PgConnection, prep: _Prepared, strategy: str) -> None:
    """Check that the target can take the strategy and create it when missing (in the
    target's open transaction)."""
    import psycopg2

    if strategy == "upsert" and prep.target_shape and not prep.target_shape.is_unique(prep.key):
        raise SchemaMismatchError(
            f"upsert needs a unique index on ({', '.join(prep.key)}) in target "
            f"{prep.target_ref}; add one or use strategy merge"
        )
    if prep.target_shape is not None:
        return
    try:
        with tgt.cursor() as cur:
            for statement in create_table_sql(prep.target_ref, prep.shape, prep.key):
                cur.execute(statement)
    except psycopg2.ProgrammingError as exc:  # a missing type, no right to create: not a retry
        raise SchemaMismatchError(
            f"cannot create the target {prep.target_ref} like the source: {db_error_line(exc)}; "
            "create the table (or what it needs) in the target database first"
        ) from None


def _staging_columns(prep: _Prepared) -> list[Column]:
    """The source's columns with the target's types (the source's for a new target)."""
    target_types = {c.name: c for c in (prep.target_shape or prep.shape).columns}
    return [target_types[name] for name in prep.shape.column_names]


def _ref(table: str | TableRef) -> TableRef:
    if isinstance(table, TableRef):
        return table
    try:
        return parse_table_ref(table)
    except ValueError as exc:
        raise ReplicationError(f"table name {table!r} {exc}") from None


def _check_options(strategy: str, watermark: str | None, null_watermark: str) -> None:
    if strategy not in STRATEGIES:
        raise ReplicationError(f"unknown strategy {strategy!r} (use {', '.join(STRATEGIES)})")
    if watermark and strategy == "replace":
        raise ReplicationError("watermark cannot be combined with strategy replace")
    if null_watermark not in NULL_WATERMARKS:
        raise ReplicationError(
            f"unknown null_watermark {null_watermark!r} (use {', '.join(NULL_WATERMARKS)})"
        )


def _skipped(prep: _Prepared, nulls: int | None) -> int:
    return nulls or 0 if prep.null_watermark == "skip" else 0


def _count_source(
    src: PgConnection, prep: _Prepared, where: str | None
) -> tuple[int, str | None, int | None]:
    """Rows to copy, their highest watermark (as text) and the rows whose watermark is NULL,
    in the source's snapshot."""
    from psycopg2 import sql

    query = source_query(
        prep.source_ref, prep.shape.column_names, where, prep.watermark_condition()
    )
    high = (
        sql.SQL("max({})::text").format(sql.Identifier(prep.watermark))
        if prep.watermark
        else sql.SQL("NULL")
    )
    with src.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*), {} FROM ({}) AS q").format(high, query))
        rows, high_water = cur.fetchone()
        if not prep.watermark:
            return rows, high_water, None
        nulls = source_query(
            prep.source_ref, [prep.watermark], where, null_rows_filter(prep.watermark)
        )
        cur.execute(sql.SQL("SELECT count(*) FROM ({}) AS q").format(nulls))
        return rows, high_water, cur.fetchone()[0]


def _check_source_keys(src: PgConnection, prep: _Prepared, where: str | None) -> None:
    from psycopg2 import sql

    query = source_query(prep.source_ref, prep.key, where, prep.watermark_condition())
    check_keys(src, sql.SQL("({}) AS staged").format(query), prep.key, f"source {prep.source_ref}")


def _count(conn: PgConnection, table: Any) -> int:
    from psycopg2 import sql

    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
        return cur.fetchone()[0]


def _lock_target(conn: PgConnection, ref: TableRef) -> None:
    """Two runs for one target take turns (a transaction-scoped advisory lock)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            ("data_platform.replication:" + repr((ref.schema, ref.name)),),
        )


class _connections:
    """Source (REPEATABLE READ, read only) and target connections; psycopg2 errors leave as
    ReplicationError (a statement failed) or PostgresError (the connection did), password-free."""

    def __init__(self, source: PostgresSettings, target: PostgresSettings) -> None:
        self.settings = (source, target)
        self.opened: list[PgConnection] = []

    def __enter__(self) -> tuple[PgConnection, PgConnection]:
        from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

        try:
            for settings in self.settings:
                self.opened.append(connect(settings))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.opened[0].set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        return self.opened[0], self.opened[1]

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        import psycopg2

        for conn in self.opened:
            conn.close()  # closing an open transaction rolls it back
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            raise PostgresError(db_error_line(exc)) from None
        if isinstance(exc, psycopg2.Error):
            raise ReplicationError(db_error_line(exc)) from None
