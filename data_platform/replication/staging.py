"""Staging tables: TEMP tables of the target session, created inside the merge's transaction
(`ON COMMIT DROP`), so a commit, a rollback or a dead client (kill -9) always removes them.

(A swap's fresh table, `swap.py`, is a plain table named like these, but created in the merge's
transaction and renamed to the target's name before the commit: it never outlives a failed run.)

Every staging table carries a comment marker with its creation time. `sweep` drops marked tables
that are not TEMP (the only kind that could outlive a session) once they are older than asked,
and never touches a table without the marker.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from data_platform.replication.catalog import Column
from data_platform.replication.tables import TableRef

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

STAGING_PREFIX = "dp_staging_"
MARKER = "data-platform replication staging; created "

_LEFTOVERS = r"""
SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND c.relname LIKE 'dp\_staging\_%%'
  AND obj_description(c.oid, 'pg_class') LIKE %s
ORDER BY 1, 2"""


@dataclass(frozen=True)
class Leftover:
    table: TableRef
    created: datetime


def create_staging(conn: PgConnection, columns: Sequence[Column]) -> TableRef:
    """A marked TEMP table with these columns (dropped at the end of the transaction)."""
    from psycopg2 import sql

    ref = TableRef("pg_temp", STAGING_PREFIX + uuid.uuid4().hex[:16])
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in columns
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(ref.sql(), definition)
        )
        cur.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                ref.sql(), sql.Literal(MARKER + datetime.now(UTC).isoformat())
            )
        )
    return ref


def find_leftovers(conn: PgConnection, older_than: timedelta) -> list[Leftover]:
    """Marked staging tables outside TEMP schemas created more than `older_than` ago."""
    cutoff = datetime.now(UTC) - older_than
    found = []
    with conn.cursor() as cur:
        cur.execute(_LEFTOVERS, (MARKER + "%",))
        for schema, name, comment in cur.fetchall():
            try:
                created = datetime.fromisoformat(comment.removeprefix(MARKER))
            except ValueError:
                continue  # not a marker we wrote
            if created <= cutoff:
                found.append(Leftover(TableRef(schema, name), created))
    return found


def drop_leftovers(conn: PgConnection, leftovers: Sequence[Leftover]) -> None:
    from psycopg2 import sql

    with conn.cursor() as cur:
        for leftover in leftovers:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(leftover.table.sql()))
