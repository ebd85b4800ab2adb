"""Does a file carry the preset's columns? One rule for CSV headers and Parquet schemas."""

from __future__ import annotations

from collections.abc import Sequence

from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import TablePreset


def extra_file_columns(name: str, columns: Sequence[str], preset: TablePreset) -> list[str]:
    """The file's columns the preset does not know; raises when any preset column is missing,
    or when there are extra ones and the preset does not say to ignore them (no silent drops)."""
    known = set(preset.column_names)
    missing = [c.name for c in preset.data_columns if c.name not in columns]
    extra = [c for c in columns if c not in known]
    if missing or (extra and not preset.ignore_extra_columns):
        raise SilverLoadError(
            f"{name}: the columns differ from preset {preset.name!r}: missing {missing}, "
            f"extra {extra}. Fix the file's columns or edit the preset's columns"
            + ("" if missing else " (or set ignore_extra_columns = true to skip extra columns)")
            + "."
        )
    return extra
