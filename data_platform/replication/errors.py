"""The errors of the replication engine. None of them is worth retrying: the input is wrong."""

from __future__ import annotations

from typing import Any

from data_platform.core import pg_errors

# SQLSTATE classes whose messages may quote a row's value: data exceptions (`invalid input syntax
# for type integer: "1.5"`) and constraint violations (DETAIL `Key (email)=(x@y)`).
_VALUE_CLASSES = {
    "22": "a source value does not fit the target column; fix the value in the source or the "
    "column's type in the target",
    "23": "a source row breaks a constraint of the target; fix the row in the source or the "
    "constraint in the target",
}


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
    """One line for a database error, never a row's value (see core.pg_errors)."""
    return pg_errors.db_error_line(exc, _VALUE_CLASSES)
