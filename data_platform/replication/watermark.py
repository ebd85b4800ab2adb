"""High-water marks of incremental tables, kept in the target database next to the data.

The state row is written in the same transaction as the merge, so a run that fails or is killed
leaves the previous mark. Values are stored as the source's text form of the column and compared
back as a literal of the column's type (`column >= 'value'`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from data_platform.core.postgres import table_exists
from data_platform.replication.tables import TableRef

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

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
