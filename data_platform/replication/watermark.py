"""High-water marks of incremental tables, kept in the target database next to the data.

The state row is written in the same transaction as the merge, so a run that fails or is killed
leaves the previous mark. Values are stored as the source's text form of the column and compared
back as a literal of the column's type (`column >= 'value'`).

A run reads from the last mark minus the table's lookback (rows that committed after the last
run with an older watermark, e.g. a long transaction's, fall in that window), and copies rows
whose watermark is NULL on every run (`include`) or never (`skip`, counted).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from data_platform.core.postgres import table_exists
from data_platform.replication.catalog import Column
from data_platform.replication.errors import SchemaMismatchError
from data_platform.replication.tables import TableRef

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable

STATE_TABLE = TableRef("data_platform_replication", "watermarks")


def load_watermark(conn: PgConnection, target: TableRef, column: str) -> str | None:
    """The last high-water mark of `target` by `column`; None before the first run (or when the
    spec switched to another column: then everything is copied again)."""
    from psycopg2 import sql

    if not table_exists(conn, STATE_TABLE.schema, STATE_TABLE.name):
        return None
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT high_water FROM {} WHERE target_schema = %s AND target_table = %s"
                " AND watermark_column = %s"
            ).format(STATE_TABLE.sql()),
            (target.schema, target.name, column),
        )
        row = cur.fetchone()
    return row[0] if row else None


def store_watermark(conn: PgConnection, target: TableRef, column: str, value: str) -> None:
    from psycopg2 import sql

    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(STATE_TABLE.schema))
        )
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (target_schema text NOT NULL,"
                " target_table text NOT NULL, watermark_column text NOT NULL,"
                " high_water text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
                " PRIMARY KEY (target_schema, target_table))"
            ).format(STATE_TABLE.sql())
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (target_schema, target_table, watermark_column, high_water)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (target_schema, target_table) DO UPDATE"
                " SET watermark_column = excluded.watermark_column,"
                " high_water = excluded.high_water, updated_at = now()"
            ).format(STATE_TABLE.sql()),
            (target.schema, target.name, column, value),
        )


def read_from(
    src: PgConnection, column: Column, since: str | None, lookback: timedelta | float | None
) -> str | None:
    """The lowest watermark a run reads: `since` minus `lookback`, computed by the source as a
    value of the column's type (a duration needs a date/time column, a number a numeric one)."""
    from psycopg2 import sql

    if lookback is None:
        return since
    duration = isinstance(lookback, timedelta)
    with src.cursor() as cur:  # checked before the first run too: it is the spec's mistake
        cur.execute(
            "SELECT typcategory FROM pg_catalog.pg_type WHERE oid = %s::regtype", (column.type,)
        )
        category = cur.fetchone()[0]
        if category not in ("D", "N"):
            raise SchemaMismatchError(
                f"lookback needs a date/time or numeric watermark; {column.name} is "
                f"{column.type}: drop lookback"
            )
        if category != ("D" if duration else "N"):
            given = "a duration" if duration else f"a number ({lookback})"
            raise SchemaMismatchError(
                f"lookback is {given}, which does not fit watermark {column.name} "
                f"({column.type}): "
                + ("write a duration such as 10m" if category == "D" else "write a number")
            )
        if since is None or not lookback:
            return since
        amount = (
            sql.SQL("CAST({} AS interval)").format(sql.Literal(f"{lookback.total_seconds()} s"))
            if duration
            else sql.Literal(lookback)
        )
        column_type = sql.SQL(column.type)  # format_type() text, quoted where needed
        cur.execute(
            sql.SQL("SELECT CAST(CAST({} AS {}) - {} AS {})::text").format(
                sql.Literal(since), column_type, amount, column_type
            )
        )
        return cur.fetchone()[0]


def watermark_filter(column: str, low: str | None, null_watermark: str) -> Composable | None:
    """Rows at or after `low` (all rows before the first mark), with or without the rows whose
    watermark is NULL."""
    from psycopg2 import sql

    name = sql.Identifier(column)
    if low is None:
        return None if null_watermark == "include" else sql.SQL("{} IS NOT NULL").format(name)
    newer = sql.SQL("{} >= {}").format(name, sql.Literal(low))
    if null_watermark == "include":
        return sql.SQL("({} OR {})").format(newer, null_rows_filter(column))
    return newer


def null_rows_filter(column: str) -> Composable:
    from psycopg2 import sql

    return sql.SQL("{} IS NULL").format(sql.Identifier(column))
