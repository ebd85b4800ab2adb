"""Parquet through binary COPY: the same table as the text path, the cases that fall back to
text, and the encoder's own errors, against a real Postgres."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pytest

from data_platform.silver import parquet_reader
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.loader import load_snapshot
from data_platform.silver.parquet_binary import binary_plan
from data_platform.silver.presets import ColumnSpec, TablePreset
from data_platform.silver.readers import open_copy_input
from data_platform.silver.sources import local_sources
from data_platform_tests.silver.conftest import (
    SNAPSHOT,
    relations,
    sample_rows,
    snapshot_dir,
    table_rows,
    write_parquet,
)

SNAPSHOT_TYPES = {
    "source_year": "integer",
    "source_month": "integer",
    "region": "text",
    "sigungu": "text",
}
TYPES = {
    "record_id": "bigint",
    "small": "smallint",
    "medium": "integer",
    "unsigned": "bigint",
    "single": "real",
    "double": "double precision",
    "from_float": "numeric",
    "scaled": "numeric(10,2)",
    "from_decimal": "numeric",
    "from_int": "numeric(30,0)",
    "label": "text",
    "short": "varchar(12)",
    "category": "text",
    "flag": "boolean",
    "day": "date",
    "moment": "timestamp",
    "moment_ms": "timestamp",
    "zoned": "timestamptz",
    "nothing": "integer",
}


def every_type_preset(table: str, types: dict[str, str] = TYPES) -> TablePreset:
    columns = {**SNAPSHOT_TYPES, **types}
    return TablePreset(
        name=table,
        dataset=table,
        schema="public",
        table=table,
        columns=tuple(ColumnSpec(n, t) for n, t in columns.items()),
    )


def every_type_frame():
    import polars as pl

    floats = [0.1 + 0.2, 1e20, 1e-7, -0.0, 123.45, float("nan"), float("inf"), None, 2.5e-300]
    rows = len(floats)
    return pl.DataFrame(
        {
            "record_id": pl.Series(range(rows), dtype=pl.Int64),
            "small": pl.Series([-32768, 32767, None, 0, 1, 2, 3, 4, 5], dtype=pl.Int16),
            "medium": pl.Series([-(2**31), 2**31 - 1, None, 7, 0, 1, 2, 3, 4], dtype=pl.Int64),
            "unsigned": pl.Series([0, 2**32, None, 9, 1, 2, 3, 4, 5], dtype=pl.UInt64),
            "single": pl.Series(
                [0.1, float("nan"), None, -1e30, 1.5, 0, 0, 0, 3.4e38], dtype=pl.Float32
            ),
            "double": pl.Series(floats, dtype=pl.Float64),
            "from_float": pl.Series(floats, dtype=pl.Float64),
            "scaled": pl.Series([0.125, 99999999.994, -0.005, None, 1.0, 2.0, 3.0, 4.0, 5.0]),
            "from_decimal": pl.Series(
                [Decimal("12345678901234567890.000100"), Decimal("-0.5"), None, Decimal("0")]
                + [Decimal("1.000")] * 5,
                dtype=pl.Decimal(30, 6),
            ),
            "from_int": pl.Series([-(2**63), 2**63 - 1, None, 0, 1, 2, 3, 4, 5], dtype=pl.Int64),
            "label": [
                "짧은",
                "긴 문자열 " * 20,
                None,
                "",
                "tab\there",
                "two\nlines",
                "back\\slash",
                "\\N",
                "cr\r\n",
            ],
            "short": ["열두 글자까지", "x", None, "", "a", "b", "c", "d", "e"],
            "category": pl.Series(
                ["역삼동", "삼성동", None, "역삼동", "a", "b", "a", "b", "a"], dtype=pl.Categorical
            ),
            "flag": [True, False, None, True, True, False, True, False, True],
            "day": [
                dt.date(2024, 5, 1),
                dt.date(1900, 1, 1),
                None,
                dt.date(2000, 1, 1),
                dt.date(1999, 12, 31),
                dt.date(9999, 12, 31),
                dt.date(1, 1, 1),
                dt.date(2024, 2, 29),
                dt.date(1970, 1, 1),
            ],
            "moment": [
                dt.datetime(2024, 5, 1, 12, 30, 1, 123456),
                dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
                None,
                dt.datetime(2000, 1, 1),
                dt.datetime(1, 1, 1),
                dt.datetime(9999, 12, 31, 23, 59, 59),
                dt.datetime(1999, 12, 31),
                dt.datetime(2000, 1, 1, 0, 0, 0, 1),
                dt.datetime(1970, 1, 1),
            ],
            "moment_ms": pl.Series(
                [dt.datetime(2024, 5, 1, 12, 30, 1, 123000)] * rows, dtype=pl.Datetime("ms")
            ),
            "zoned": pl.Series([dt.datetime(2024, 5, 1, 12, 30)] * rows).dt.replace_time_zone(
                "Asia/Seoul"
            ),
            "nothing": pl.Series([None] * rows, dtype=pl.Null),
        }
    )


def load_file(conn, preset: TablePreset, root: Path):
    [source] = local_sources(root)
    return load_snapshot(conn, preset, SNAPSHOT, [source], chunk_rows=4)


def test_every_type_loads_through_binary_exactly_as_through_text(
    conn, tmp_path: Path, monkeypatch
) -> None:
    every_type_frame().write_parquet(snapshot_dir(tmp_path) / "types.parquet")
    binary, text = every_type_preset("binary_types"), every_type_preset("text_types")
    [source] = local_sources(tmp_path)
    with open_copy_input(source, binary, {}, 4) as data:
        assert data.copy_format == "binary"
    assert load_file(conn, binary, tmp_path).rows == 9
    monkeypatch.setattr(parquet_reader, "binary_plan", lambda *args: None)
    with open_copy_input(source, text, {}, 4) as data:
        assert data.copy_format == "text"
    assert load_file(conn, text, tmp_path).rows == 9
    loaded = table_rows(conn, binary)
    assert loaded == table_rows(conn, text)
    by_name = [dict(zip(binary.column_names, row, strict=True)) for row in loaded]
    assert [r["from_float"] for r in by_name[:4]] == [
        "0.30000000000000004",
        "100000000000000000000",
        "0.0000001",
        "0.0",
    ]
    assert [r["scaled"] for r in by_name[:3]] == ["0.13", "99999999.99", "-0.01"]
    assert by_name[0]["from_decimal"] == "12345678901234567890.000100"
    assert by_name[1]["from_int"] == str(2**63 - 1)
    assert by_name[5]["from_float"] == "NaN" and by_name[6]["from_float"] == "Infinity"
    assert by_name[1]["unsigned"] == str(2**32) and by_name[0]["medium"] == str(-(2**31))
    assert by_name[8]["label"] == "cr\r\n" and by_name[7]["label"] == "\\N"
    assert by_name[2]["label"] is None and by_name[3]["label"] == ""
    assert by_name[1]["moment"] == "1969-12-31 23:59:59.999999"
    assert all(r["nothing"] is None for r in by_name)


def test_random_numbers_load_into_numeric_as_through_text(conn, tmp_path: Path, monkeypatch):
    """The encoder's decimal-text-to-numeric conversion (weights, scales, exponents, signs)
    against Postgres' own numeric_in, on 6,000 values."""
    import polars as pl

    rnd = random.Random(5)
    rows = 2_000
    pl.DataFrame(
        {
            "record_id": range(rows),
            "from_float": [rnd.uniform(-1, 1) * 10 ** rnd.randint(-40, 40) for _ in range(rows)],
            "from_int": [
                rnd.randint(-(10**18), 10**18) // 10 ** rnd.randint(0, 18) for _ in range(rows)
            ],
            "from_decimal": pl.Series(
                [
                    Decimal(rnd.randint(-(10**20), 10**20)).scaleb(-rnd.randint(0, 12))
                    for _ in range(rows)
                ],
                dtype=pl.Decimal(38, 12),
            ),
        }
    ).write_parquet(snapshot_dir(tmp_path) / "numbers.parquet")
    columns = {
        "record_id": "bigint",
        "from_float": "numeric",
        "from_int": "numeric",
        "from_decimal": "numeric",
    }
    binary, text = (every_type_preset(name, columns) for name in ("binary_numbers", "text_numbers"))
    load_file(conn, binary, tmp_path)
    monkeypatch.setattr(parquet_reader, "binary_plan", lambda *args: None)
    load_file(conn, text, tmp_path)
    loaded = table_rows(conn, binary)
    assert len(loaded) == rows and loaded == table_rows(conn, text)


def test_conversions_that_could_differ_from_text_fall_back_to_it() -> None:
    import polars as pl

    preset = every_type_preset("plan")
    columns = ("single", "double", "moment", "zoned", "day", "label")
    exact = {
        "single": pl.Float32,
        "double": pl.Float64,
        "moment": pl.Datetime("us"),
        "zoned": pl.Datetime("ms", "UTC"),
        "day": pl.Date,
        "label": pl.Enum(["a"]),
    }
    plan = binary_plan(exact, columns, preset)
    assert plan is not None
    assert [c.kind for c in plan] == ["float4", "float8", "timestamp", "timestamp", "date", "text"]
    for column, dtype in [
        ("single", pl.Float64),  # double rounding of the decimal text could differ
        ("double", pl.Int64),
        ("moment", pl.Datetime("ns")),  # Postgres rounds nanoseconds; a cast would truncate
        ("moment", pl.Datetime("us", "UTC")),  # timestamp ignores the text's offset
        ("zoned", pl.Datetime("us")),  # read in the session's time zone
        ("day", pl.Datetime("us")),
        ("label", pl.Int64),  # polars' text of a number is the text path's business
    ]:
        assert binary_plan({**exact, column: dtype}, columns, preset) is None, (column, dtype)


def test_an_integer_out_of_range_names_the_row_and_keeps_the_snapshot(
    conn, preset, tmp_path: Path
) -> None:
    import polars as pl

    write_parquet(snapshot_dir(tmp_path / "old") / "p.parquet", sample_rows(5))
    load_file(conn, preset, tmp_path / "old")
    before = table_rows(conn, preset)
    rows = sample_rows(250)
    rows[149][5] = "3000000000"  # floor is integer in the table
    path = snapshot_dir(tmp_path / "new") / "p.parquet"
    write_parquet(path, rows, row_group_size=40, casts={"floor": pl.Int64})
    with pytest.raises(SilverLoadError) as error:
        load_file(conn, preset, tmp_path / "new")
    assert str(error.value).endswith(
        "/p.parquet: row 150, column floor: numeric_value_out_of_range (SQLSTATE 22003): the "
        "value does not fit the column of type integer (values are not shown). Fix the value or "
        "change the column's type in preset 'silver_stage_1_main'."
    )
    assert "3000000000" not in str(error.value)
    assert table_rows(conn, preset) == before
    assert len(relations(conn)) == 2  # the table and its one partition: no staging table


def test_a_connection_in_another_client_encoding_still_loads_korean_text(
    conn, preset, tmp_path: Path
) -> None:
    conn.set_client_encoding("EUC_KR")
    rows = sample_rows(20)
    write_parquet(snapshot_dir(tmp_path) / "p.parquet", rows)
    load_file(conn, preset, tmp_path)
    loaded = table_rows(conn, preset)
    assert [r[5:8] for r in loaded] == [tuple(r[1:4]) for r in rows]


def test_the_encoder_reads_sliced_and_chunked_batches_like_fresh_ones() -> None:
    """Arrow arrays carry offsets (a slice shares its parent's buffers, validity bits included)
    and a frame may arrive in several chunks: the bytes must not depend on either."""
    import polars as pl
    from data_platform.silver._copy_binary import encode

    frame = every_type_frame()
    plan = binary_plan(dict(frame.schema), tuple(frame.columns), every_type_preset("slices"))
    assert plan is not None
    kinds = [c.kind for c in plan]
    frame = frame.select(
        pl.col(c.name).cast(pl.String) if c.cast_to_string else c.name for c in plan
    )
    whole = encode(frame.__arrow_c_stream__(), kinds)
    for start in range(frame.height):
        for length in range(1, frame.height - start + 1):
            sliced = frame.slice(start, length)
            fresh = pl.from_dicts(sliced.to_dicts(), schema=sliced.schema)
            assert encode(sliced.__arrow_c_stream__(), kinds) == encode(
                fresh.__arrow_c_stream__(), kinds
            ), (start, length)
    chunked = pl.concat([frame.slice(0, 4), frame.slice(4)], rechunk=False)
    assert chunked.n_chunks() == 2
    assert encode(chunked.__arrow_c_stream__(), kinds) == whole
