"""The errors of the replication engine. None of them is worth retrying: the input is wrong."""

from __future__ import annotations

from typing import Any


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
