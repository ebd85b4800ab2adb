"""Derive a table preset from raw files, for `silver load --infer-schema`.

CSV values are typed by the narrowest type that holds every value seen, widened safely
(integer -> bigint -> numeric, date -> timestamp, anything mixed -> text; codes with leading
zeros stay text). Parquet columns take their declared types. The result is saved as a TOML file
for the user to review before it shapes a table for good.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from data_platform.silver.csv_reader import infer_csv_columns
from data_platform.silver.decoding import UndecodableBytes
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.parquet_reader import local_copy, read_schema
from data_platform.silver.presets import DEFAULT_SNAPSHOT_COLUMNS, ColumnSpec, TablePreset
from data_platform.silver.sources import SourceFile

DEFAULT_SAMPLE_ROWS = 100_000
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_INTEGER = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_DECIMAL = re.compile(r"^[+-]?(0|[1-9][0-9]*)?\.[0-9]+$|^[+-]?(0|[1-9][0-9]*)\.$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
# Widening order inside a family; a value from another family makes the column text.
_NUMBERS = ("integer", "bigint", "numeric")
_TIMES = ("date", "timestamp")
_SNAPSHOT_TYPES = ("integer", "integer", "text", "text")


def value_type(value: str) -> str | None:
    """The narrowest Postgres type for one CSV value (None for an empty value)."""
    if value == "":
        return None
    if _INTEGER.match(value):
        number = abs(int(value))
        return "integer" if number <= _INT32 else "bigint" if number <= _INT64 else "numeric"
    if _DECIMAL.match(value):
        return "numeric"
    if _DATE.match(value):
        return "date"
    if _TIMESTAMP.match(value):
        return "timestamp"
    return "text"


def widen(current: str | None, new: str | None) -> str | None:
    if current is None or current == new:
        return new
    if new is None:
        return current
    for family in (_NUMBERS, _TIMES):
        if current in family and new in family:
            return max(current, new, key=family.index)
    return "text"


class ColumnTypes:
    """Running type per column, in first-seen order."""

    def __init__(self) -> None:
        self.types: dict[str, str | None] = {}

    def add_column(self, name: str, pg_type: str | None = None) -> None:
        self.types[name] = widen(self.types.get(name), pg_type) if name in self.types else pg_type

    def add_rows(self, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        for name in header:
            self.types.setdefault(name, None)
        current = [self.types[name] for name in header]
        for row in rows:
            for i, value in enumerate(row):
                if current[i] != "text":
                    current[i] = widen(current[i], value_type(value))
        for name, pg_type in zip(header, current, strict=True):
            self.types[name] = pg_type


def parquet_type(dtype: Any) -> str:
    import polars as pl

    if dtype in (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16):
        return "integer"
    if dtype in (pl.Int64, pl.UInt32):
        return "bigint"
    if dtype.is_integer() or dtype.is_decimal():
        precision, scale = getattr(dtype, "precision", None), getattr(dtype, "scale", None)
        return f"numeric({precision},{scale})" if precision else "numeric"
    if dtype == pl.Float32:
        return "real"
    if dtype == pl.Float64:
        return "double precision"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if dtype == pl.Time:
        return "time"
    if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
        raise SilverLoadError(f"Parquet type {dtype} cannot be loaded; flatten or cast it")
    return "text"


def infer_preset(
    name: str, files: Sequence[SourceFile], *, sample_rows: int = DEFAULT_SAMPLE_ROWS
) -> TablePreset:
    """A preset named `name` (table and dataset too) whose columns fit the files."""
    if not files:
        raise SilverLoadError("no files to infer a table schema from")
    types = ColumnTypes()
    for source in files:
        if source.file_format == "parquet":
            with local_copy(source) as path:
                for column, dtype in read_schema(source.name, path).items():
                    types.add_column(column, parquet_type(dtype))
        else:
            failed: dict[str, UndecodableBytes] = {}
            while True:
                try:
                    infer_csv_columns(source, failed, types.add_rows, sample_rows)
                    break
                except UndecodableBytes as exc:
                    failed[exc.encoding] = exc
    columns = [
        ColumnSpec(column, pg_type)
        for column, pg_type in zip(DEFAULT_SNAPSHOT_COLUMNS, _SNAPSHOT_TYPES, strict=True)
    ]
    for column, pg_type in types.types.items():
        if column in DEFAULT_SNAPSHOT_COLUMNS:
            continue  # the path decides these; keep their standard types
        columns.append(ColumnSpec(column, pg_type or "text"))
    return TablePreset(name=name, dataset=name, schema="public", table=name, columns=tuple(columns))
