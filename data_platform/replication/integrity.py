"""Order-independent checksums, computed in the target database.

A row's hash is `hash_record_extended(ROW(columns...), 0)` (64 bits, Postgres' own hash of each
value; columns of types without a hash function, e.g. json or arrays, are hashed as text), and a
set's checksum is (row count, bit_xor of the row hashes). Key uniqueness makes xor safe: no two
rows of the set are the same row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data_platform.replication.catalog import Column

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
    matched_rows: int  # staged keys found in the target
    staged_checksum: int | None
    target_checksum: int | None

    @property
    def matches(self) -> bool:
        return (
            self.matched_rows == self.staged_rows and self.staged_checksum == self.target_checksum
        )


def _row_hash(alias: str, columns: Sequence[Column]) -> Composable:
    from psycopg2 import sql

    values = [
        sql.Identifier(alias, c.name)
        if c.type.split("(")[0] in HASHABLE_TYPES
        else sql.SQL("{}::text").format(sql.Identifier(alias, c.name))
        for c in columns
    ]
    return sql.SQL("hash_record_extended(ROW({}), 0)").format(sql.SQL(", ").join(values))


def compare_staged_with_target(
    conn: PgConnection,
    staging: Composable,
    target: Composable,
    columns: Sequence[Column],
    key: Sequence[str],
) -> ChecksumComparison:
    """One pass over staging joined to the target on the key: the staged rows' checksum and the
    checksum of the target rows holding the staged keys."""
    from psycopg2 import sql

    join = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("s", k), sql.Identifier("t", k)) for k in key
    )
    query = sql.SQL(
        "SELECT count(*), count({probe}), bit_xor({staged}), bit_xor({merged})"
        " FROM {staging} AS s LEFT JOIN {target} AS t ON {join}"
    ).format(
        probe=sql.Identifier("t", key[0]),
        staged=_row_hash("s", columns),
        merged=sql.SQL("CASE WHEN {} IS NOT NULL THEN {} END").format(
            sql.Identifier("t", key[0]), _row_hash("t", columns)
        ),
        staging=staging,
        target=target,
        join=join,
    )
    with conn.cursor() as cur:
        cur.execute(query)
        staged, matched, staged_sum, target_sum = cur.fetchone()
    return ChecksumComparison(staged, matched, staged_sum, target_sum)
