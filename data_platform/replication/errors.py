"""The errors of the replication engine. None of them is worth retrying: the input is wrong."""

from __future__ import annotations

import re
from typing import Any

# SQLSTATE classes whose messages may quote a row's value: data exceptions (`invalid input syntax
# for type integer: "1.5"`) and constraint violations (DETAIL `Key (email)=(x@y)`).
_VALUE_CLASSES = {
    "22": "a source value does not fit the target column; fix the value in the source or the "
    "column's type in the target",
    "23": "a source row breaks a constraint of the target; fix the row in the source or the "
    "constraint in the target",
}
_COPY_CONTEXT = re.compile(r"^COPY [^,]+, line (\d+), column ([^:]+):", re.MULTILINE)


class ReplicationError(Exception):
    """A table cannot be replicated as configured; the target is left as it was."""


class SpecError(ReplicationError):
    """The spec file is invalid; the message names the table entry and the field."""


class SchemaMismatchError(ReplicationError):
    """Source and target tables disagree (columns, types, primary key)."""


class DuplicateKeyError(ReplicationError):
    """The source holds several rows for one key; the message gives the count and examples."""


class IntegrityMismatchError(ReplicationError):
    """Counts or checksums of staged and merged rows disagree; the merge was rolled back.
    `numbers` holds the run's figures so far (a CopyResult) for reports and asset checks."""

    def __init__(self, message: str, numbers: Any = None) -> None:
        super().__init__(message)
        self.numbers = numbers


def db_error_line(exc: BaseException) -> str:
    """One line for a database error: its first line, except for a data exception or a
    constraint violation, whose text can carry a row's value (personal data bound for logs and
    Dagster's event log): those give the condition's name, the table, column and constraint,
    never the value."""
    code = getattr(exc, "pgcode", None) or ""
    diag = getattr(exc, "diag", None)
    if code[:2] not in _VALUE_CLASSES or diag is None:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    from psycopg2 import errorcodes

    try:
        condition = errorcodes.lookup(code).lower()
    except KeyError:
        condition = "error"
    parts = [f"{condition} (SQLSTATE {code})"]
    if diag.table_name:
        schema = f"{diag.schema_name}." if diag.schema_name else ""
        parts.append(f"table {schema}{diag.table_name}")
    copy = _COPY_CONTEXT.search(diag.context or "")
    column = diag.column_name or (copy.group(2) if copy else None)
    if column:
        parts.append(f"column {column}")
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    if diag.datatype_name:
        parts.append(f"type {diag.datatype_name}")
    if copy:
        parts.append(f"copy row {copy.group(1)}")
    return f"{', '.join(parts)}: {_VALUE_CLASSES[code[:2]]} (values are not shown)"
