"""Parquet files as COPY input: streamed in batches of `chunk_rows` rows (polars' streaming
engine), each batch encoded in memory and passed on to COPY: as binary COPY where every column's
type maps exactly (`parquet_binary`), else in Postgres' COPY text format.

Text, not CSV: Postgres parses it with less work (no quote handling; measured ~20 % less server
time per row), and with line breaks escaped every row is one line, so a COPY error's line
number is the file's row.

Column types are checked against the preset before any row moves, so a string column where the
preset wants an integer fails up front with the column named.
"""

from __future__ import annotations

import contextlib
import functools
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from data_platform.silver.columns import extra_file_columns
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.parquet_binary import binary_columns, binary_plan, encode_batch
from data_platform.silver.presets import (
    DECIMAL_TYPES,
    INTEGER_TYPES,
    TEMPORAL_TYPES,
    TEXT_TYPES,
    TablePreset,
)
from data_platform.silver.sources import SourceFile
from data_platform.silver.streams import CopyInput, Piece

_TIMESTAMPS = frozenset(t for t in TEMPORAL_TYPES if t.startswith("timestamp"))
_TIMES = frozenset({"time", "time without time zone"})
_FROM_STRING = TEMPORAL_TYPES | {"uuid", "json", "jsonb"}


def type_fits(dtype: Any, pg_base: str) -> bool:
    """Can a Parquet column of polars type `dtype` load into a Postgres column of `pg_base`?"""
    import polars as pl

    if dtype == pl.Null:
        return True
    if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
        return False
    if pg_base in TEXT_TYPES:
        return True
    if dtype.is_integer():
        return pg_base in INTEGER_TYPES | DECIMAL_TYPES
    if dtype.is_float() or dtype.is_decimal():
        return pg_base in DECIMAL_TYPES
    if dtype == pl.Boolean:
        return pg_base in ("boolean", "bool")
    if dtype == pl.Date:
        return pg_base == "date" or pg_base in _TIMESTAMPS
    if isinstance(dtype, pl.Datetime):
        return pg_base in _TIMESTAMPS
    if dtype == pl.Time:
        return pg_base in _TIMES
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return pg_base in _FROM_STRING
    return False


def match_parquet_columns(
    name: str, schema: dict[str, Any], preset: TablePreset
) -> tuple[str, ...]:
    """The table columns to read, in file order; names and types must fit the preset."""
    extra = set(extra_file_columns(name, list(schema), preset))
    columns = tuple(c for c in schema if c not in extra)
    wrong = [
        f"{c} is {schema[c]} in the file but {preset.column(c).pg_type} in the preset"
        for c in columns
        if not type_fits(schema[c], preset.column(c).base_type)
    ]
    if wrong:
        raise SilverLoadError(
            f"{name}: column types do not fit the table: {'; '.join(wrong)}. Cast the column "
            "when writing the file or change its type in the preset."
        )
    return columns


@contextlib.contextmanager
def local_copy(source: SourceFile) -> Iterator[Path]:
    """A seekable local path for the file: its own, or a temporary copy of a remote object."""
    if source.local_path is not None:
        yield source.local_path
        return
    with tempfile.TemporaryDirectory(prefix="silver-parquet-") as folder:
        path = Path(folder) / "source.parquet"
        with source.open() as remote, path.open("wb") as out:
            shutil.copyfileobj(remote, out, 1 << 20)
        yield path


def read_schema(name: str, path: Path) -> dict[str, Any]:
    import polars as pl

    try:
        return dict(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SilverLoadError(f"{name}: cannot read the Parquet footer ({exc})") from None


# COPY text format: a backslash, tab, line feed or carriage return inside a value is escaped.
_TEXT_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def _copy_text(frame: Any) -> bytes:
    """A polars frame as COPY text rows: tab-separated, `\\N` for NULL, specials escaped.

    Written plainly first: when the output holds exactly one tab per separator, one line feed
    per row, one backslash per NULL and no carriage return, no value held a special character
    (counted by `bytes.count` in C, far cheaper than scanning every string column first).
    Otherwise the text columns are escaped and the batch written again."""
    import polars as pl

    data = _tab_separated(frame)
    separators = frame.height * (frame.width - 1)
    if (
        data.count(b"\n") == frame.height
        and data.count(b"\t") == separators
        and data.count(b"\\") == sum(frame.null_count().row(0))
        and b"\r" not in data
    ):
        return data
    text_like = [
        c
        for c, dtype in frame.schema.items()
        if not (dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean)
    ]
    return _tab_separated(
        frame.with_columns(_escaped(pl.col(c).cast(pl.String)) for c in text_like)
    )


def _tab_separated(frame: Any) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(
        buffer, include_header=False, separator="\t", quote_style="never", null_value="\\N"
    )
    return buffer.getvalue()


def _escaped(expr: Any) -> Any:
    for special, replacement in _TEXT_ESCAPES:
        expr = expr.str.replace_all(special, replacement, literal=True)
    return expr


def _pieces(
    name: str, path: Path, exprs: Any, chunk_rows: int, encode: Callable[[Any, int], bytes]
) -> Iterator[Piece]:
    """The file, `chunk_rows` rows at a time (polars' streaming engine reads it row group by
    row group), each batch as `encode(batch, rows before it)`."""
    import polars as pl

    rows = 0
    try:
        frames = pl.scan_parquet(path).select(exprs).collect_batches(chunk_size=chunk_rows)
        for frame in frames:
            if frame.height == 0:
                continue
            yield Piece(encode(frame, rows), rows + 1, frame.height, rows + 1, frame.height)
            rows += frame.height
    except pl.exceptions.PolarsError as exc:
        raise SilverLoadError(f"{name}: cannot read row {rows + 1:,} onwards ({exc})") from None


@contextlib.contextmanager
def open_parquet(source: SourceFile, preset: TablePreset, chunk_rows: int) -> Iterator[CopyInput]:
    with local_copy(source) as path:
        schema = read_schema(source.name, path)
        columns = match_parquet_columns(source.name, schema, preset)
        plan = binary_plan(schema, columns, preset)
        if plan is None:
            pieces = _pieces(source.name, path, columns, chunk_rows, lambda f, _: _copy_text(f))
        else:
            encode = functools.partial(encode_batch, name=source.name, plan=plan, preset=preset)
            pieces = _pieces(source.name, path, binary_columns(plan), chunk_rows, encode)
        copy_format = "text" if plan is None else "binary"
        yield CopyInput(
            source.name, "parquet", None, "UTF8", columns, pieces, 1, "row", copy_format=copy_format
        )


def count_parquet_rows(source: SourceFile, preset: TablePreset | None = None) -> int:
    """Rows of a Parquet file from its footer (polars answers `len()` from the metadata);
    with a preset, the columns must fit it first."""
    import polars as pl

    with local_copy(source) as path:
        schema = read_schema(source.name, path)
        if preset is not None:
            match_parquet_columns(source.name, schema, preset)
        try:
            return int(pl.scan_parquet(path).select(pl.len()).collect().item())
        except pl.exceptions.PolarsError as exc:
            raise SilverLoadError(f"{source.name}: cannot read the Parquet file ({exc})") from None
