"""Postgres COPY errors as messages that name the file, the row and what to do."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from data_platform.core.partitions import SnapshotKey
from data_platform.silver.presets import TablePreset
from data_platform.silver.streams import CopyInput, Piece
from data_platform.silver.tables import SNAPSHOT_CHECK

if TYPE_CHECKING:
    import psycopg2

_CONTEXT = re.compile(r", line (\d+)(?:, column (.+?))?(?::|$)", re.MULTILINE)
_MAX_DETAIL = 300


def describe_copy_error(
    exc: psycopg2.Error,
    data: CopyInput,
    taken: Sequence[Piece],
    preset: TablePreset,
    snapshot: SnapshotKey,
) -> str:
    """`taken`: the pieces the failing stream sent (its line numbers count only those)."""
    diag = exc.diag
    primary = diag.message_primary or str(exc).strip()
    match = _CONTEXT.search(diag.context or "")
    where = data.name
    if match:
        where += f": {data.position(taken, int(match.group(1)))}"
        if match.group(2):
            where += f", column {match.group(2)}"
    code = exc.pgcode or ""
    if code == "22P04":
        return (
            f"{where}: {primary}. The row does not have the header's {len(data.columns)} fields "
            "(a stray comma, quote or line break?); fix the row and load again."
        )
    if (code == "23514" and diag.constraint_name == SNAPSHOT_CHECK) or (
        code == "23502" and diag.column_name in preset.snapshot_columns
    ):
        detail = (diag.message_detail or "")[:_MAX_DETAIL]
        return (
            f"{where}: the row's {', '.join(preset.snapshot_columns)} contradict the file's path "
            f"{snapshot.path()} ({detail}). Rows must belong to the snapshot of their folder: "
            "fix the values, drop those columns from the file, or move the file."
        )
    if code in ("22021", "22P05"):
        return (
            f"{where}: {primary} (read as {data.encoding or data.pg_encoding}); fix the bytes or "
            "re-save the file as UTF-8."
        )
    if code.startswith("22"):
        return (
            f"{where}: {primary}. Fix the value or change the column's type in preset "
            f"{preset.name!r}."
        )
    return f"{where}: COPY into {preset.schema}.{preset.table} failed: {primary}"
