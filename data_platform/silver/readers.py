"""Raw files (CSV, CSV.gz, Parquet) as COPY input, and a dry-run read of a file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from data_platform.silver.csv_reader import count_csv_records, count_csv_rows, open_csv
from data_platform.silver.decoding import UndecodableBytes
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.parquet_reader import count_parquet_rows, open_parquet
from data_platform.silver.presets import TablePreset
from data_platform.silver.sources import SourceFile
from data_platform.silver.streams import CopyInput

__all__ = ["CopyInput", "count_source_rows", "inspect_file", "open_copy_input"]


def _format(source: SourceFile) -> str:
    try:
        return source.file_format
    except ValueError as exc:
        raise SilverLoadError(str(exc)) from None


@contextlib.contextmanager
def open_copy_input(
    source: SourceFile,
    preset: TablePreset,
    failed_encodings: dict[str, UndecodableBytes],
    chunk_rows: int,
) -> Iterator[CopyInput]:
    """COPY input for one file. For CSV, `failed_encodings` lists encodings already ruled out
    for this file; a stream that hits a bad byte fails with UndecodableBytes as its `failure`."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    if _format(source) == "parquet":
        with open_parquet(source, preset, chunk_rows) as copy_input:
            yield copy_input
    else:
        with open_csv(source, preset, failed_encodings, chunk_rows) as copy_input:
            yield copy_input


def inspect_file(source: SourceFile, preset: TablePreset) -> tuple[str | None, int]:
    """(encoding, rows) of one file, read through and checked the way a load checks it."""
    if _format(source) == "parquet":
        return None, count_parquet_rows(source, preset)
    failed: dict[str, UndecodableBytes] = {}
    while True:
        try:
            return count_csv_rows(source, preset, failed)
        except UndecodableBytes as exc:
            failed[exc.encoding] = exc  # try the next encoding; none left raises SilverLoadError


def count_source_rows(source: SourceFile) -> int:
    """Data rows of a file counted apart from the COPY path: Parquet from its footer, CSV by a
    quote-aware scan of its bytes. What a load should have put into Postgres."""
    if _format(source) == "parquet":
        return count_parquet_rows(source)
    return count_csv_records(source)
