"""Order-independent checksums, computed in the target database.

A row's hash is `hash_record_extended(ROW(columns...), 0)` (64 bits, Postgres' own hash of each
value; columns of types without a hash function, e.g. json or arrays, are hashed as text), and a
set's checksum is (row count, bit_xor of the row hashes). Key uniqueness makes xor safe: no two
rows of the set are the same row.

Every strategy writes each staged row into the target (insert, or update to the staged values),
so the target rows this transaction wrote (`xmin` = its transaction id) must be exactly the staged
rows. Finding them takes one scan of the target and no join with staging; a trigger or rule that
changes, drops or adds rows shows up as a different count or checksum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data_platform.replication.catalog import Column
from data_platform.replication.errors import DuplicateKeyError

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable

# Base types Postgres can hash directly; anything else is hashed through its text form.
HASHABLE_TYPES = (
    "smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean", "text",
    "character varying", "character", "\"char\"", "name", "bytea", "uuid", "jsonb", "date",
    "time without time zone", "time with time zone", "timestamp without time zone",
    "timestamp with time zone", "interval", "inet", "cidr", "macaddr", "oid", "money",
)  # fmt: skip


@dataclass(frozen=True)
class ChecksumComparison:
    staged_rows: int
    written_rows: int  # target rows written by this transaction
    target_rows: int  # every target row, after the strategy
    staged_checksum: int | None
    written_checksum: int | None

    @property
    def matches(self) -> bool:
        return (
            self.written_rows == self.staged_rows and self.staged_checksum == self.written_checksum
        )


def row_hash(columns: Sequence[Column]) -> Composable:
    from psycopg2 import sql

    values = [
        sql.Identifier(c.name)
        if c.type.split("(")[0] in HASHABLE_TYPES
        else sql.SQL("{}::text").format(sql.Identifier(c.name))
        for c in columns
    ]
    return sql.SQL("hash_record_extended(ROW({}), 0)").format(sql.SQL(", ").join(values))


def compare_staged_with_written(
    conn: PgConnection, staging: Composable, target: Composable, columns: Sequence[Column]
) -> ChecksumComparison:
    """The staged rows' checksum and, in one scan of the target, its row count and the checksum
    of the rows this transaction wrote (call it in the transaction that ran the strategy)."""
    from psycopg2 import sql

    with conn.cursor() as cur:
        # The id as a literal, not pg_current_xact_id() in the scan: that function is parallel
        # unsafe and would keep the scan of the target in one process. (A literal, not a query
        # parameter: a column name may hold a `%`.)
        cur.execute("SELECT pg_current_xact_id()::xid::text")
        ours = sql.SQL("xmin = {}::xid").format(sql.Literal(cur.fetchone()[0]))
        cur.execute(
            sql.SQL(
                "SELECT s.n, t.n, t.written, s.checksum, t.checksum"
                " FROM (SELECT count(*) AS n, bit_xor({hash}) AS checksum FROM {staging}) AS s,"
                " (SELECT count(*) AS n, count(*) FILTER (WHERE {ours}) AS written,"
                " bit_xor({hash}) FILTER (WHERE {ours}) AS checksum FROM {target}) AS t"
            ).format(hash=row_hash(columns), staging=staging, target=target, ours=ours)
        )
        staged, total, written, staged_sum, written_sum = cur.fetchone()
    return ChecksumComparison(staged, written, total, staged_sum, written_sum)


def check_keys(conn: PgConnection, staging: Composable, key: Sequence[str], source: str) -> None:
    """Raise DuplicateKeyError when a key is NULL or staged twice. The message names the key
    columns and counts, never a key's value: keys may be e-mail addresses or personal IDs, and
    the message reaches logs and Dagster's event log."""
    from psycopg2 import sql

    names = sql.SQL(", ").join(map(sql.Identifier, key))
    null_key = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(k)) for k in key)
    label = ", ".join(key)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(staging, null_key))
        nulls = cur.fetchone()[0]
        if nulls:
            raise DuplicateKeyError(
                f"{source}: {nulls} row(s) have a NULL in primary_key ({label}); "
                "filter them with `where` or pick another key"
            )
        cur.execute(
            sql.SQL(
                "SELECT count(*), sum(n), max(n) FROM"
                " (SELECT count(*) AS n FROM {} GROUP BY {} HAVING count(*) > 1) AS d"
            ).format(staging, names)
        )
        keys, rows, most = cur.fetchone()
    if keys:
        raise DuplicateKeyError(
            f"{source}: {keys} key(s) of primary_key ({label}) occur more than once, in {rows} "
            f"rows (up to {most} rows for one key); deduplicate the source or choose another "
            "primary_key. Nothing was changed."
        )


# Text forms that depend on session settings (hashed for types without a hash function) are
# made alike in both databases before a checksum is compared across them.
_SAME_TEXT = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD';"
    " SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3;"
    " SET LOCAL bytea_output = 'hex'"
)


def use_comparable_text(conn: PgConnection) -> None:
    """For the rest of the transaction: text forms that hash alike in every database."""
    with conn.cursor() as cur:
        cur.execute(_SAME_TEXT)


def checksum(
    conn: PgConnection, relation: Composable, columns: Sequence[Column]
) -> tuple[int, int]:
    """(rows, bit_xor of the row hashes; 0 when empty) of a table or a parenthesized query,
    comparable with the same columns' checksum in another database (same types, and
    `use_comparable_text` on both connections)."""
    from psycopg2 import sql

    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT count(*), coalesce(bit_xor({}), 0) FROM {} AS q").format(
                row_hash(columns), relation
            )
        )
        rows, value = cur.fetchone()
    return rows, value
