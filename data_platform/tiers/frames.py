"""Frames in and out: polars or pandas in, the provider's exact schema out, Parquet bytes."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import polars as pl

from data_platform.tiers.config import CEASED, TIME, ProviderConfig, TiersError

# Warm files are sorted by Time: row groups of this many rows carry min/max statistics per group.
ROW_GROUP_ROWS = 16_384
_REPLACE_IT = "restore the file the tiers wrote (a hot file: delete it, run `tiers ingest` again)"


def to_polars(frame: Any, name: str = "frame") -> pl.DataFrame:
    if isinstance(frame, pl.DataFrame):
        return frame
    if type(frame).__module__.startswith("pandas"):
        return _from_pandas(frame)
    raise TiersError(f"{name} must be a polars or pandas DataFrame, not {type(frame).__name__}")


def _from_pandas(frame: Any) -> pl.DataFrame:
    """pandas -> polars without pyarrow (which polars needs for object columns)."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "biuf":
            columns.append(pl.Series(str(name), column.to_numpy(), nan_to_null=True))
        else:
            values = column.astype(object).where(column.notna(), None).tolist()
            columns.append(pl.Series(str(name), values))
    return pl.DataFrame(columns)


def conform(
    frame: pl.DataFrame, config: ProviderConfig, *, with_time: bool = False
) -> pl.DataFrame:
    """Cast to the provider's schema in canonical order; a missing or extra column, a value that
    does not cast, a null or a repeated primary key is a TiersError naming it."""
    schema = config.schema_dtypes
    expected = set(schema) if with_time else set(schema) - {TIME}
    missing = [c for c in schema if c in expected and c != CEASED and c not in frame.columns]
    extra = [c for c in frame.columns if c not in schema]
    if missing or extra:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"extra {', '.join(extra)}"] if extra else []
        wanted = ", ".join(c for c in schema if c in expected)
        raise TiersError(
            f"{config.name}: columns do not match the provider schema ({'; '.join(problems)}); "
            f"expected {wanted}"
        )
    if CEASED not in frame.columns:
        frame = frame.with_columns(pl.lit(False).alias(CEASED))
    columns = []
    for column, dtype in schema.items():
        if column not in expected:
            continue
        try:
            frame.select(pl.col(column).cast(dtype, strict=True))
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            found = frame.schema[column]
            raise TiersError(
                f"{config.name}: column {column!r} is {found}, which does not convert to {dtype} "
                f"(schema drift?): {str(exc).splitlines()[0]}"
            ) from None
        _refuse_lost_fractions(frame, config, column, dtype)
        columns.append(pl.col(column).cast(dtype, strict=True))
    frame = frame.select(columns)
    nulls = [c for c in [*config.pk_columns, CEASED] if frame[c].null_count()]
    if nulls:
        raise TiersError(f"{config.name}: primary key column(s) {', '.join(nulls)} hold nulls")
    if frame.select(config.pk_columns).is_duplicated().any():
        raise TiersError(
            f"{config.name}: a primary key ({', '.join(config.pk_columns)}) appears twice in one "
            "frame; a slot holds at most one change per key"
        )
    return frame


def _refuse_lost_fractions(
    frame: pl.DataFrame, config: ProviderConfig, column: str, dtype: pl.DataType
) -> None:
    """A strict cast of 2.7 to an integer type gives 2 without complaint; refuse it instead."""
    if not (frame.schema[column].is_float() and dtype.is_integer()):
        return
    value = pl.col(column)
    lossy = frame.filter(value.is_not_null() & (value != value.round()))
    if lossy.is_empty():
        return
    row = lossy.row(0, named=True)
    key = ", ".join(f"{c}={row[c]!r}" for c in config.pk_columns)
    more = f" (and {lossy.height - 1} more rows)" if lossy.height > 1 else ""
    raise TiersError(
        f"{config.name}: column {column!r} holds {row[column]!r} at {key}{more}, which {dtype} "
        f"would store as {int(row[column])}; fix the data or declare {column!r} a float column"
    )


def empty_frame(config: ProviderConfig) -> pl.DataFrame:
    return pl.DataFrame(schema=config.schema_dtypes)


def to_parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True, row_group_size=ROW_GROUP_ROWS)
    return buffer.getvalue()


def from_parquet(data: bytes, config: ProviderConfig, key: str) -> pl.DataFrame:
    """A hot or warm file's rows, after checking it holds exactly the provider's columns."""
    return read_parquet_checked(data, key, config.schema_dtypes)


def read_parquet_checked(data: bytes, key: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    check_parquet_schema(data, key, schema)
    with parquet_errors(key):
        return pl.read_parquet(io.BytesIO(data)).select(list(schema))


def check_parquet_schema(data: bytes, key: str, schema: Mapping[str, pl.DataType]) -> None:
    """A TiersError naming `key` unless it is Parquet with exactly `schema`'s columns and types."""
    with parquet_errors(key):
        found = pl.read_parquet_schema(io.BytesIO(data))
    problems = [f"missing {c}" for c in schema if c not in found]
    problems += [f"extra {c}" for c in found if c not in schema]
    wrong = {c: t for c, t in schema.items() if c in found and found[c] != t}
    problems += [f"{c} is {found[c]}, expected {t}" for c, t in wrong.items()]
    if problems:
        raise TiersError(
            f"{key} does not hold the provider's change-log schema ({'; '.join(problems)}); "
            f"{_REPLACE_IT}"
        )


@contextmanager
def parquet_errors(key: str) -> Iterator[None]:
    """A Parquet decoding error becomes one line naming the object, not a polars traceback."""
    try:
        yield
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise TiersError(
            f"{key} is not a readable Parquet file ({str(exc).splitlines()[0]}); {_REPLACE_IT}"
        ) from None


def latest_per_key(frame: pl.DataFrame, config: ProviderConfig) -> pl.DataFrame:
    """The last change per primary key (by Time; a slot holds one change per key)."""
    return (
        frame.sort(TIME, maintain_order=True)
        .unique(subset=list(config.pk_columns), keep="last", maintain_order=True)
        .sort(list(config.pk_columns))
    )
