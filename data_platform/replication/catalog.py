"""What the catalogs say about a table: columns, types, nullability and unique keys; creating a
missing target with the source's shape; and checking that an existing target fits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from data_platform.replication.errors import SchemaMismatchError
from data_platform.replication.tables import TableRef

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""
_UNIQUE_KEYS = """
SELECT i.indisprimary,
       ARRAY(SELECT a.attname::text
             FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.ord)
FROM pg_catalog.pg_index i
WHERE i.indrelid = %s AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY NOT i.indisprimary, i.indexrelid"""
# A different type is fine when Postgres would assign it (int4 -> int8, varchar -> text).
_ASSIGNABLE = """
SELECT to_regtype(%(source)s) = to_regtype(%(target)s) OR EXISTS (
    SELECT 1 FROM pg_catalog.pg_cast
    WHERE castsource = to_regtype(%(source)s) AND casttarget = to_regtype(%(target)s)
      AND castcontext IN ('i', 'a'))"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): e.g. `numeric(18,4)`, `timestamp with time zone`
    not_null: bool


@dataclass(frozen=True)
class TableShape:
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    unique_keys: tuple[tuple[str, ...], ...]  # the primary key and every plain unique index

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def is_unique(self, key: tuple[str, ...]) -> bool:
        return any(set(k) == set(key) for k in self.unique_keys)


def read_shape(conn: PgConnection, ref: TableRef) -> TableShape | None:
    """The table's (or view's) columns and keys, or None when there is no such relation."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.oid FROM pg_catalog.pg_class c"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r','p','v','m','f')",
            (ref.schema, ref.name),
        )
        found = cur.fetchone()
        if found is None:
            return None
        cur.execute(_COLUMNS, found)
        columns = tuple(Column(name, type_, bool(nn)) for name, type_, nn in cur.fetchall())
        cur.execute(_UNIQUE_KEYS, found)
        keys = cur.fetchall()
    primary = next((tuple(cols) for is_pk, cols in keys if is_pk), ())
    return TableShape(columns, primary, tuple(tuple(cols) for _, cols in keys))


def resolve_key(
    source: TableShape, given: tuple[str, ...] | None, ref: TableRef
) -> tuple[str, ...]:
    key = given or source.primary_key
    if not key:
        raise SchemaMismatchError(
            f"{ref} has no primary key; name the key columns with `primary_key: [...]` in the spec"
        )
    missing = [c for c in key if c not in source.column_names]
    if missing:
        raise SchemaMismatchError(f"primary_key column(s) {', '.join(missing)} not in {ref}")
    return key


def check_target_fits(
    conn: PgConnection, source: TableShape, target: TableShape, ref: TableRef
) -> bool:
    """Raise when the target's columns differ; True when every type is identical (so COPY can
    use the binary format), False when some only differ assignably (COPY goes through text)."""
    missing = [c for c in source.column_names if c not in target.column_names]
    extra = [c for c in target.column_names if c not in source.column_names]
    target_types = {c.name: c.type for c in target.columns}
    differing = [
        c for c in source.columns if c.name in target_types and c.type != target_types[c.name]
    ]
    incompatible = []
    with conn.cursor() as cur:
        for column in differing:
            cur.execute(_ASSIGNABLE, {"source": column.type, "target": target_types[column.name]})
            if not cur.fetchone()[0]:
                incompatible.append(f"{column.name} ({column.type} -> {target_types[column.name]})")
    problems = []
    if missing:
        problems.append(f"missing in the target: {', '.join(missing)}")
    if extra:
        problems.append(f"only in the target: {', '.join(extra)}")
    if incompatible:
        problems.append(f"incompatible types: {', '.join(incompatible)}")
    if problems:
        raise SchemaMismatchError(
            f"target {ref} does not match the source: {'; '.join(problems)}"
            "; fix the target table or the spec"
        )
    return not differing


def create_table_sql(ref: TableRef, shape: TableShape, key: tuple[str, ...]) -> list:
    """CREATE SCHEMA IF NOT EXISTS + CREATE TABLE with the source's columns and `key`.

    Type names are the source catalog's own format_type() text, which quotes what needs it.
    """
    from psycopg2 import sql

    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name), sql.SQL(c.type), sql.SQL(" NOT NULL" if c.not_null else "")
        )
        for c in shape.columns
    ]
    columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key))))
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ref.schema)),
        sql.SQL("CREATE TABLE {} ({})").format(ref.sql(), sql.SQL(", ").join(columns)),
    ]
