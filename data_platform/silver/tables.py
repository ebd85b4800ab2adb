"""DDL and catalog queries for silver tables: the partitioned parent, one leaf per snapshot.

The parent is `PARTITION BY RANGE (source_year, source_month, region COLLATE "C", sigungu
COLLATE "C")` and each snapshot's leaf covers exactly one key: FROM (y, m, r, s) TO
(y, m, r, s || E'\\x01'). In "C" order no text sorts between s and s || E'\\x01', so the range
holds one sigungu; queries filtering on year and month still prune partitions.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from psycopg2 import sql

from data_platform.core.partitions import SnapshotKey
from data_platform.core.postgres import qualified
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import INTEGER_TYPES, TablePreset

if TYPE_CHECKING:
    from psycopg2.extensions import cursor as PgCursor

SNAPSHOT_CHECK = "snapshot_matches_path"
_MAX_IDENTIFIER_BYTES = 63


def lock_key(*parts: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock, stable across processes."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def snapshot_values(preset: TablePreset, snapshot: SnapshotKey) -> tuple[Any, Any, str, str]:
    """The snapshot as values of the preset's column types (text years/months zero-padded)."""
    year_col, month_col = (preset.column(n) for n in preset.snapshot_columns[:2])
    year = snapshot.year if year_col.base_type in INTEGER_TYPES else f"{snapshot.year:04d}"
    month = snapshot.month if month_col.base_type in INTEGER_TYPES else f"{snapshot.month:02d}"
    return year, month, snapshot.region, snapshot.sigungu


def _is_text(preset: TablePreset, column: str) -> bool:
    return preset.column(column).base_type not in INTEGER_TYPES


def _key_column(preset: TablePreset, column: str) -> sql.Composable:
    ident = sql.Identifier(column)
    return sql.SQL('{} COLLATE "C"').format(ident) if _is_text(preset, column) else ident


def leaf_name(preset: TablePreset, snapshot: SnapshotKey, suffix: str = "") -> str:
    """`<table>_<yyyymm>_<hash>` (+ suffix), cut to Postgres' 63-byte identifier limit. The hash
    covers the whole table name and snapshot, so tables whose names share a long start (cut
    away here) still get their own leaves."""
    key = "\x1f".join((preset.table, snapshot.path()))
    digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    tail = f"_{snapshot.year:04d}{snapshot.month:02d}_{digest}{suffix}"
    head = preset.table.encode("utf-8")[: _MAX_IDENTIFIER_BYTES - len(tail)]
    return head.decode("utf-8", errors="ignore") + tail


def _column_defs(preset: TablePreset, defaults: tuple[Any, ...] | None) -> list[sql.Composable]:
    defs = []
    for column in preset.columns:
        ddl = sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.pg_type))
        if column.name in preset.snapshot_columns:
            ddl = sql.SQL("{} NOT NULL").format(ddl)
            if defaults is not None:
                value = defaults[preset.snapshot_columns.index(column.name)]
                ddl = sql.SQL("{} DEFAULT {}").format(ddl, sql.Literal(value))
        defs.append(ddl)
    return defs


def create_parent_sql(preset: TablePreset) -> sql.Composed:
    key = sql.SQL(", ").join(_key_column(preset, c) for c in preset.snapshot_columns)
    return sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE ({})").format(
        qualified(preset.schema, preset.table), sql.SQL(", ").join(_column_defs(preset, None)), key
    )


def snapshot_condition(preset: TablePreset, snapshot: SnapshotKey) -> sql.Composed:
    """`year = .. AND month = .. AND region COLLATE "C" = .. AND sigungu COLLATE "C" = ..`"""
    values = snapshot_values(preset, snapshot)
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(_key_column(preset, column), sql.Literal(value))
        for column, value in zip(preset.snapshot_columns, values, strict=True)
    )


def create_staging_sql(preset: TablePreset, snapshot: SnapshotKey, name: str) -> sql.Composed:
    """A standalone table shaped like a leaf: snapshot columns default to the path's values and
    a CHECK refuses rows whose own snapshot columns say otherwise (it also lets ATTACH skip its
    validation scan, since the CHECK implies the partition bound)."""
    defs = _column_defs(preset, snapshot_values(preset, snapshot))
    check = sql.SQL("CONSTRAINT {} CHECK ({})").format(
        sql.Identifier(SNAPSHOT_CHECK), snapshot_condition(preset, snapshot)
    )
    return sql.SQL("CREATE TABLE {} ({})").format(
        qualified(preset.schema, name), sql.SQL(", ").join([*defs, check])
    )


def partition_bound_sql(preset: TablePreset, snapshot: SnapshotKey) -> sql.Composed:
    values = snapshot_values(preset, snapshot)
    upper = (*values[:3], values[3] + "\x01")
    return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(
        sql.SQL(", ").join(map(sql.Literal, values)), sql.SQL(", ").join(map(sql.Literal, upper))
    )


def relation_kind(cur: PgCursor, schema: str, table: str) -> str | None:
    """pg_class.relkind ('p' partitioned, 'r' plain, ...) or None when missing."""
    cur.execute(
        "SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    row = cur.fetchone()
    return row[0] if row else None


def table_columns(cur: PgCursor, schema: str, table: str) -> dict[str, str]:
    """Column name -> format_type, in table order."""
    cur.execute(
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)"
        " FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s::regclass"
        " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(table)]).as_string(cur),),
    )
    return dict(cur.fetchall())


def partition_columns(cur: PgCursor, schema: str, table: str) -> tuple[str, list[str]]:
    """(strategy, key column names) of a partitioned table."""
    cur.execute(
        "SELECT p.partstrat, array(SELECT a.attname FROM unnest(p.partattrs::int2[])"
        " WITH ORDINALITY k(attnum, i) JOIN pg_catalog.pg_attribute a"
        " ON a.attrelid = p.partrelid AND a.attnum = k.attnum ORDER BY k.i)"
        " FROM pg_catalog.pg_partitioned_table p WHERE p.partrelid = %s::regclass",
        (sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(table)]).as_string(cur),),
    )
    strategy, columns = cur.fetchone()
    return strategy, list(columns)


def check_same_columns(
    preset: TablePreset, actual: dict[str, str], expected: dict[str, str] | None = None
) -> None:
    """The table must have exactly the preset's columns (and, given `expected`, its types)."""
    where = f"table {preset.schema}.{preset.table}"
    missing = [c for c in preset.column_names if c not in actual]
    extra = [c for c in actual if c not in preset.column_names]
    if missing or extra:
        raise SilverLoadError(
            f"{where} does not match preset {preset.name!r}: the table lacks {missing} and has "
            f"extra {extra}. Alter the table (ALTER TABLE ... ADD/DROP COLUMN) or edit the preset."
        )
    if expected is not None:
        wrong = [
            f"{c} is {actual[c]} in the table but {expected[c]} in the preset"
            for c in preset.column_names
            if actual[c] != expected[c]
        ]
        if wrong:
            raise SilverLoadError(
                f"{where} does not match preset {preset.name!r}: {'; '.join(wrong)}. "
                "Alter the column type or edit the preset."
            )
