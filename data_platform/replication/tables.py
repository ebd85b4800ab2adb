"""Table names as (schema, name) pairs, parsed from the spec and quoted only by psycopg2.sql."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from data_platform.core.postgres import qualified

if TYPE_CHECKING:
    from psycopg2.sql import Composable

DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class TableRef:
    """A table; any characters are allowed in either part (they are always quoted)."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    def sql(self) -> Composable:
        return qualified(self.schema, self.name)


def parse_table_ref(value: Any) -> TableRef:
    """`schema.table` (split at the first dot; no dot means `public`) or `{schema:, name:}`.

    Raises ValueError with what is wrong; the caller adds where it was found.
    """
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("is empty")
        schema, dot, name = value.partition(".")
        return TableRef(schema, name) if dot else TableRef(DEFAULT_SCHEMA, value)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"schema", "name"})
        if unknown:
            raise ValueError(f"unknown keys {unknown} (allowed: schema, name)")
        name, schema = value.get("name"), value.get("schema", DEFAULT_SCHEMA)
        if not isinstance(name, str) or not name or not isinstance(schema, str) or not schema:
            raise ValueError("needs a non-empty `name` (and optionally `schema`) as strings")
        return TableRef(schema, name)
    raise ValueError("must be `schema.table` or a mapping {schema: ..., name: ...}")
