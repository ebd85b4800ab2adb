"""Postgres errors as one line that never quotes a row's value.

Two SQLSTATE classes put values into their text: data exceptions (22: `invalid input syntax for
type integer: "홍길동"`, a COPY CONTEXT with the field) and integrity constraint violations (23:
DETAIL `Key (email)=(x@y)`, `Failing row contains (...)`, a whole row). That text would reach the
CLI, logs and Dagster's event log, so for those classes only the condition's name, the table,
column, constraint, type and COPY line are given. Other classes' first lines name objects, not
data, and are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

VALUE_CLASSES = ("22", "23")
# Postgres' CopyFromErrorCallback: `COPY t, line N[, column c][: "value" | : null input]`.
_COPY_CONTEXT = re.compile(r"^COPY [^,]+, line (\d+)(?:, column (.+?))?(?::|$)", re.MULTILINE)


@dataclass(frozen=True)
class ErrorFacts:
    """What a database error says apart from values: all that may be shown of a class 22/23."""

    sqlstate: str
    condition: str  # Postgres' condition name, e.g. invalid_text_representation
    table: str | None = None  # schema-qualified when the server says the schema
    column: str | None = None  # the error's column, or the column COPY was reading
    constraint: str | None = None
    datatype: str | None = None
    copy_line: int | None = None  # the line of the COPY stream (1 = its first)

    @property
    def names(self) -> str:
        """`condition (SQLSTATE x), table t, column c, constraint k, type y, copy row n`."""
        parts = [f"{self.condition} (SQLSTATE {self.sqlstate})"]
        for label, value in (
            ("table", self.table),
            ("column", self.column),
            ("constraint", self.constraint),
            ("type", self.datatype),
            ("copy row", self.copy_line),
        ):
            if value is not None:
                parts.append(f"{label} {value}")
        return ", ".join(parts)


def quotes_values(exc: BaseException) -> bool:
    """Whether the error's text may hold a row's value (SQLSTATE class 22 or 23)."""
    return (getattr(exc, "pgcode", None) or "")[:2] in VALUE_CLASSES


def error_facts(exc: BaseException) -> ErrorFacts:
    """The error's condition and the objects it names, read from its fields (never its text)."""
    from psycopg2 import errorcodes

    code = getattr(exc, "pgcode", None) or ""
    try:
        condition = errorcodes.lookup(code).lower()
    except KeyError:
        condition = "error"
    diag = getattr(exc, "diag", None)
    if diag is None:
        return ErrorFacts(code, condition)
    copy = _COPY_CONTEXT.search(diag.context or "")
    table = diag.table_name
    if table and diag.schema_name:
        table = f"{diag.schema_name}.{table}"
    return ErrorFacts(
        sqlstate=code,
        condition=condition,
        table=table,
        column=diag.column_name or (copy.group(2) if copy and copy.group(2) else None),
        constraint=diag.constraint_name,
        datatype=diag.datatype_name,
        copy_line=int(copy.group(1)) if copy else None,
    )


def safe_message(exc: BaseException) -> str:
    """The error in one line: Postgres' own first line, or, for a class that may quote values,
    the condition and the objects it names."""
    if quotes_values(exc):
        return error_facts(exc).names
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def db_error_line(exc: BaseException, advice: Mapping[str, str]) -> str:
    """`safe_message`, and for class 22 or 23 what to do: `advice` maps the class to it."""
    message = safe_message(exc)
    if not quotes_values(exc):
        return message
    return f"{message}: {advice[exc.pgcode[:2]]} (values are not shown)"  # type: ignore[attr-defined]
