"""`replace` by swap: load a fresh table without indexes, build them afterwards, swap it in.

Everything happens in the merge's one transaction: the fresh table is created, loaded by one
COPY stream, given the target's constraints and indexes (a sorted build, far cheaper than
inserting 1 M rows into a live index), its grants, owner and comment; then the old table is
dropped and the fresh one takes its name (and its indexes their names). Readers keep reading
the old table until the commit and then see the new one; a failure or a killed client rolls all
of it back, the fresh table included (it was never committed).

One stream, not several: parallel COPY needs the fresh table committed before the swap so the
other sessions can see it, and a kill -9 would then leave it behind.

A target the swap cannot carry whole (see `swap_blockers`) is replaced by TRUNCATE + INSERT
from a TEMP staging table instead; the run's result says which way was taken and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data_platform.replication.catalog import Column
from data_platform.replication.errors import DuplicateKeyError
from data_platform.replication.integrity import row_hash
from data_platform.replication.staging import STAGING_PREFIX
from data_platform.replication.tables import TableRef

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable

# What the swap would lose or could not drop; each a reason, in the words the result shows.
_BLOCKERS = """
SELECT array_remove(ARRAY[
  CASE WHEN c.relkind <> 'r' OR c.relispartition THEN 'partitioned' END,
  CASE WHEN c.relpersistence <> 'p' THEN 'unlogged' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid)
       THEN 'inheritance' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal)
       THEN 'triggers' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = c.oid) THEN 'rules' END,
  CASE WHEN c.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = c.oid)
       THEN 'row-level security' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f'
                    AND (conrelid = c.oid OR confrelid = c.oid)) THEN 'foreign keys' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                    WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = c.oid
                      AND r.ev_class <> c.oid) THEN 'dependent views' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_depend d WHERE d.deptype = 'n'
                    AND d.refobjid IN (c.oid, c.reltype) AND d.classid <> 'pg_rewrite'::regclass
                    AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN
                             (SELECT oid FROM pg_constraint WHERE conrelid = c.oid)))
       THEN 'dependent objects' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0
                    AND (attidentity <> '' OR attacl IS NOT NULL OR attstattarget >= 0))
       THEN 'identity columns, column grants or statistics targets' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = c.oid)
       THEN 'publications' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxrelid = c.oid)
       THEN 'extended statistics' END,
  CASE WHEN c.reloptions IS NOT NULL OR c.reltablespace <> 0 OR c.relreplident <> 'd'
       THEN 'storage options' END,
  CASE WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                    AND obj_description(i.indexrelid, 'pg_class') IS NOT NULL)
       THEN 'index comments' END,
  CASE WHEN NOT pg_has_role(c.relowner, 'MEMBER') THEN 'owned by another role' END
], NULL)
FROM pg_class c WHERE c.oid = %s"""
# Index-backed constraints (primary key, unique, exclusion), rebuilt by ADD CONSTRAINT.
_CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s AND contype IN ('p', 'u', 'x') ORDER BY contype, conname"""
# Other indexes: pg_get_indexdef() is `CREATE [UNIQUE] INDEX name ON schema.table USING rest`;
# `rest` is taken after the prefix rebuilt here, so no name is ever parsed.
_INDEXES = """
SELECT ic.relname, i.indisunique, substr(pg_get_indexdef(i.indexrelid), length(p.prefix) + 1),
       starts_with(pg_get_indexdef(i.indexrelid), p.prefix)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (SELECT format('CREATE %%sINDEX %%I ON %%I.%%I USING ',
    CASE WHEN i.indisunique THEN 'UNIQUE ' END, ic.relname, n.nspname, c.relname) AS prefix) p
WHERE i.indrelid = %s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid AND conrelid = c.oid)
ORDER BY ic.relname"""
# Sequences owned by a column (serial): they would go with the old table.
_OWNED_SEQUENCES = """
SELECT s.oid::regclass::text, a.attname FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s AND d.deptype = 'a'"""
_OWNER_AND_COMMENT = """
SELECT pg_get_userbyid(relowner), obj_description(oid, 'pg_class') FROM pg_class WHERE oid = %s"""
# Privileges as (grantee or NULL for PUBLIC, privilege, grantable); NULL acl = the defaults.
_GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
WHERE c.oid = %s"""
INDEX_BUILD_MEMORY = "256MB"
# Rewrite the target when the source holds at least 1/REBUILD_RATIO of its rows.
REBUILD_RATIO = 4
_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass(frozen=True)
class SwapPlan:
    """The fresh table and what the target's table carries over to it."""

    target: TableRef
    target_oid: int
    fresh: TableRef
    constraints: tuple[tuple[str, str], ...]  # (name, definition)
    indexes: tuple[tuple[str, bool, str], ...]  # (name, unique, `USING ...` rest)
    sequences: tuple[tuple[str, str], ...]  # (sequence, column)


def table_oid(conn: PgConnection, ref: TableRef) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            (ref.schema, ref.name),
        )
        return cur.fetchone()[0]


def swap_blockers(conn: PgConnection, ref: TableRef) -> list[str]:
    """Why the target cannot be swapped whole (empty: it can). When it can, the target is
    locked EXCLUSIVE for the rest of the transaction (writers and DDL wait for this run,
    readers go on reading) and checked again under the lock."""
    from psycopg2 import sql

    reasons = _blockers(conn, ref)
    if not reasons:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(ref.sql()))
        reasons = _blockers(conn, ref)
    return reasons


def _blockers(conn: PgConnection, ref: TableRef) -> list[str]:
    oid = table_oid(conn, ref)
    with conn.cursor() as cur:
        cur.execute(_BLOCKERS, (oid,))
        reasons = list(cur.fetchone()[0])
        cur.execute(_INDEXES, (oid,))
        if not all(row[3] for row in cur.fetchall()):
            reasons.append("an index definition this engine cannot rebuild")
    return reasons


def create_fresh_table(conn: PgConnection, target: TableRef) -> SwapPlan:
    """An empty table like the target (columns, defaults, CHECK and NOT NULL constraints,
    storage, column comments) without its indexes, beside it in the target's schema."""
    from psycopg2 import sql

    oid = table_oid(conn, target)
    fresh = TableRef(target.schema, STAGING_PREFIX + uuid.uuid4().hex[:16])
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
                " INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION"
                " INCLUDING GENERATED)"
            ).format(fresh.sql(), target.sql())
        )
        cur.execute(_CONSTRAINTS, (oid,))
        constraints = tuple(cur.fetchall())
        cur.execute(_INDEXES, (oid,))
        indexes = tuple((name, unique, rest) for name, unique, rest, _ in cur.fetchall())
        cur.execute(_OWNED_SEQUENCES, (oid,))
        sequences = tuple(cur.fetchall())
    return SwapPlan(target, oid, fresh, constraints, indexes, sequences)


def carry_over(
    conn: PgConnection, plan: SwapPlan, columns: Sequence[Column], key: Sequence[str]
) -> tuple[int, int]:
    """Copy the target's rows whose key was not staged into the loaded fresh table; returns
    their (count, checksum) as written, for the check of the fresh table. (The statement's
    scan of the fresh table sees only the staged rows, never the ones it inserts.)"""
    from psycopg2 import sql

    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    matches = sql.SQL(" AND ").join(
        sql.SQL("s.{k} = t.{k}").format(k=sql.Identifier(k)) for k in key
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "WITH kept AS (INSERT INTO {fresh} ({names}) SELECT {names} FROM {target} AS t"
                " WHERE NOT EXISTS (SELECT FROM {fresh} AS s WHERE {matches})"
                " RETURNING {hash} AS h) SELECT count(*), coalesce(bit_xor(h), 0) FROM kept"
            ).format(
                fresh=plan.fresh.sql(),
                names=names,
                target=plan.target.sql(),
                matches=matches,
                hash=row_hash(columns),
            )
        )
        rows, value = cur.fetchone()
    return rows, value


def rebuild_pays(
    source: PgConnection, source_ref: TableRef, target: PgConnection, target_ref: TableRef
) -> bool:
    """Whether rewriting the whole target beats changing it in place, by the planner's row
    estimates: when the source holds at least a quarter as many rows as the target (indexes
    built once over sorted rows cost far less per row than 1 M index insertions)."""
    query = (
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'"
    )
    estimates = []
    for conn, ref in ((source, source_ref), (target, target_ref)):
        with conn.cursor() as cur:
            cur.execute(query, (ref.schema, ref.name))
            found = cur.fetchone()
        estimates.append(found[0] if found else -1)
    source_rows, target_rows = estimates
    return source_rows >= 0 and target_rows >= 0 and source_rows * REBUILD_RATIO >= target_rows


def _temporary_name(plan: SwapPlan, number: int) -> str:
    return f"{plan.fresh.name}_{number}"


def build_indexes(conn: PgConnection, plan: SwapPlan) -> None:
    """The target's key constraints and indexes on the loaded fresh table, under temporary
    names (index names are unique per schema; the old ones still exist). Rows that repeat a
    value of one of the target's unique indexes raise DuplicateKeyError naming that index
    (never the value)."""
    from psycopg2 import errors, sql

    statements = [
        (name, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            plan.fresh.sql(), sql.Identifier(_temporary_name(plan, number)), sql.SQL(definition)
        ))
        for number, (name, definition) in enumerate(plan.constraints)
    ] + [
        (name, sql.SQL("CREATE {}INDEX {} ON {} USING {}").format(
            sql.SQL("UNIQUE " if unique else ""),
            sql.Identifier(_temporary_name(plan, number)),
            plan.fresh.sql(),
            sql.SQL(rest),
        ))
        for number, (name, unique, rest) in enumerate(plan.indexes, start=len(plan.constraints))
    ]  # fmt: skip
    with conn.cursor() as cur:
        # The default 64MB sorts 1 M keys partly on disk; this transaction only.
        cur.execute("SET LOCAL maintenance_work_mem = %s", (INDEX_BUILD_MEMORY,))
        for name, statement in statements:
            try:
                cur.execute(statement)
            except errors.UniqueViolation:
                # Not the server's detail: it quotes the repeated value, which may be personal.
                raise DuplicateKeyError(
                    f"{plan.target}: the new rows repeat a value of its unique index {name!r}; "
                    "deduplicate the source or drop that index. Nothing was changed."
                ) from None
        cur.execute(sql.SQL("ANALYZE {}").format(plan.fresh.sql()))


def swap_in(conn: PgConnection, plan: SwapPlan) -> None:
    """Give the fresh table the target's owner, grants, comment and sequences; drop the old
    table; give the fresh table, its constraints and indexes the old names."""
    from psycopg2 import sql

    fresh = plan.fresh.sql()
    with conn.cursor() as cur:
        cur.execute(_OWNER_AND_COMMENT, (plan.target_oid,))
        owner, comment = cur.fetchone()
        cur.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(fresh, sql.Identifier(owner)))
        _copy_grants(conn, plan)
        if comment is not None:
            cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(fresh, sql.Literal(comment)))
        for sequence, column in plan.sequences:
            cur.execute(
                sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(
                    sql.SQL(sequence), sql.Identifier(plan.fresh.schema, plan.fresh.name, column)
                )
            )
        cur.execute(sql.SQL("DROP TABLE {}").format(plan.target.sql()))
        for number, (name, _) in enumerate(plan.constraints):
            cur.execute(
                sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    fresh, sql.Identifier(_temporary_name(plan, number)), sql.Identifier(name)
                )
            )
        for number, (name, _, _) in enumerate(plan.indexes, start=len(plan.constraints)):
            cur.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(plan.target.schema, _temporary_name(plan, number)),
                    sql.Identifier(name),
                )
            )
        cur.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(fresh, sql.Identifier(plan.target.name))
        )


def _copy_grants(conn: PgConnection, plan: SwapPlan) -> None:
    """Make the fresh table's privileges exactly the old table's (default privileges of the
    schema may have added some at CREATE)."""
    from psycopg2 import sql

    fresh_oid = table_oid(conn, plan.fresh)
    with conn.cursor() as cur:
        cur.execute(_GRANTS, (plan.target_oid,))
        wanted = set(cur.fetchall())
        cur.execute(_GRANTS, (fresh_oid,))
        present = set(cur.fetchall())
        if present == wanted:
            return
        for grantee in {g for g, _, _ in present}:
            cur.execute(
                sql.SQL("REVOKE ALL ON {} FROM {}").format(plan.fresh.sql(), _role(grantee))
            )
        for grantee, privilege, grantable in sorted(wanted, key=str):
            if privilege not in _PRIVILEGES:
                raise ValueError(f"unknown table privilege {privilege!r}")
            cur.execute(
                sql.SQL("GRANT {} ON {} TO {}{}").format(
                    sql.SQL(privilege),
                    plan.fresh.sql(),
                    _role(grantee),
                    sql.SQL(" WITH GRANT OPTION" if grantable else ""),
                )
            )


def _role(name: str | None) -> Composable:
    from psycopg2 import sql

    return sql.SQL("PUBLIC") if name is None else sql.Identifier(name)
