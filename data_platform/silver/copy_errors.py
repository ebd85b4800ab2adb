"""Postgres COPY errors as messages that name the file, the row, the column and what to do.

Never a value from the file: Postgres quotes the bad value (`invalid input syntax for type
integer: "…"`) or the whole row (`Failing row contains (…)`), which may be a name or an address,
and the message goes to the CLI, logs and Dagster's event log. The condition, the column and its
type say enough to find the value in the named row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from data_platform.core.partitions import SnapshotKey
from data_platform.core.pg_errors import error_facts, safe_message
from data_platform.silver.presets import TablePreset
from data_platform.silver.streams import CopyInput, Piece
from data_platform.silver.tables import SNAPSHOT_CHECK

if TYPE_CHECKING:
    import psycopg2


def value_does_not_fit(where: str, condition: str, pg_type: str | None, preset: TablePreset) -> str:
    """`where` (file, row, column) holds a value its column's type refuses."""
    of_type = f" of type {pg_type}" if pg_type else ""
    return (
        f"{where}: {condition}: the value does not fit the column{of_type} (values are not "
        f"shown). Fix the value or change the column's type in preset {preset.name!r}."
    )


def describe_copy_error(
    exc: psycopg2.Error,
    data: CopyInput,
    taken: Sequence[Piece],
    preset: TablePreset,
    snapshot: SnapshotKey,
) -> str:
    """`taken`: the pieces the failing stream sent (its line numbers count only those)."""
    facts = error_facts(exc)
    where = data.name
    if facts.copy_line is not None:
        where += f": {data.position(taken, facts.copy_line)}"
    if facts.column:
        where += f", column {facts.column}"
    code = facts.sqlstate
    condition = f"{facts.condition} (SQLSTATE {code})"
    if code == "22P04":
        # bad_copy_file_format messages describe the row's shape (missing data for column "x",
        # extra data after last expected column), never its values.
        primary = exc.diag.message_primary or facts.condition
        return (
            f"{where}: {primary}. The row does not have the header's {len(data.columns)} fields "
            "(a stray comma, quote or line break?); fix the row and load again."
        )
    if (code == "23514" and facts.constraint == SNAPSHOT_CHECK) or (
        code == "23502" and facts.column in preset.snapshot_columns
    ):
        return (
            f"{where}: the row's {', '.join(preset.snapshot_columns)} contradict the file's path "
            f"{snapshot.path()} (values are not shown). Rows must belong to the snapshot of their "
            "folder: fix the values, drop those columns from the file, or move the file."
        )
    if code in ("22021", "22P05"):
        return (
            f"{where}: {condition}: a character is not valid "
            f"{data.encoding or data.pg_encoding}; fix the bytes or re-save the file as UTF-8."
        )
    if code.startswith("22"):
        types = {c.name: c.pg_type for c in preset.columns}
        pg_type = types.get(facts.column or "") or facts.datatype
        return value_does_not_fit(where, condition, pg_type, preset)
    return f"{where}: COPY into {preset.schema}.{preset.table} failed: {safe_message(exc)}"
