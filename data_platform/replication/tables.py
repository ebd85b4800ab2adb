"""Table names as (schema, name) pairs, parsed from the spec and quoted only by psycopg2.sql."""

from __future__ import annotations

import re
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
    """`schema.table` or `{schema:, name:}`; no schema means `public`.

    In the string form either part may be quoted as in SQL (`s."We;ird ""Tab"`: a quote inside
    is doubled), which is how a name holds a dot or a quote. An unquoted part is taken as
    written (no lower-casing, unlike SQL), and an unquoted table name after the first dot may
    hold dots (`a.b.c` is table `b.c` in schema `a`), as before quoting was understood.
    Raises ValueError with what is wrong; the caller adds where it was found.
    """
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("is empty")
        match = _QUALIFIED.fullmatch(value)
        if match is None or _empty_part(match):
            raise ValueError(
                f"{value!r} is not `schema.table`: quote a part that holds a dot or a quote as in "
                'SQL (`s."a.b"`, a quote inside doubled: `s."a""b"`), or use the mapping form '
                "{schema: ..., name: ...}"
            )
        schema, name = match.group("schema"), match.group("name")
        return TableRef(_unquote(schema) if schema else DEFAULT_SCHEMA, _unquote(name))
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"schema", "name"})
        if unknown:
            raise ValueError(f"unknown keys {unknown} (allowed: schema, name)")
        name, schema = value.get("name"), value.get("schema", DEFAULT_SCHEMA)
        if not isinstance(name, str) or not name or not isinstance(schema, str) or not schema:
            raise ValueError("needs a non-empty `name` (and optionally `schema`) as strings")
        return TableRef(schema, name)
    raise ValueError("must be `schema.table` or a mapping {schema: ..., name: ...}")


_QUOTED = r'"(?:[^"]|"")+"'
_QUALIFIED = re.compile(rf'(?:(?P<schema>{_QUOTED}|[^".]+)\.)?(?P<name>{_QUOTED}|[^"]+)', re.DOTALL)


def _empty_part(match: re.Match[str]) -> bool:
    """`s.` or `.t`: the schema part did not match, so an unquoted name kept the dot."""
    name = match.group("name")
    return not match.group("schema") and not name.startswith('"') and "." in name


def _unquote(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part
