"""Builders for raw silver files: snapshot folders, CSV in any encoding, Parquet."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from data_platform.core.partitions import SnapshotKey
from data_platform.silver.presets import TablePreset, load_preset

HEADER = [
    "record_id",
    "dong",
    "complex_name",
    "address",
    "area_m2",
    "floor",
    "price_krw",
    "contract_date",
]
SNAPSHOT = SnapshotKey(2024, 5, "서울특별시", "강남구")
DONGS = ["역삼동", "삼성동", "대치동", "개포동"]


def sample_rows(count: int, start: int = 0) -> list[list[str]]:
    """Korean text, quoted commas and a quote inside a field."""
    return [
        [
            str(i),
            DONGS[i % len(DONGS)],
            f'래미안 {i}단지, "{i % 7}동"',
            f"서울특별시 강남구 {DONGS[i % len(DONGS)]} {i}-1",
            f"{50 + i % 100}.25",
            str(i % 40),
            str(100_000_000 + i),
            f"2024-05-{1 + i % 28:02d}",
        ]
        for i in range(start, start + count)
    ]


def snapshot_dir(root: Path, snapshot: SnapshotKey = SNAPSHOT) -> Path:
    folder = root / snapshot.path()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def csv_bytes(
    header: Sequence[str], rows: Sequence[Sequence[str]], encoding: str = "utf-8"
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)  # cp949 encoding is exact (only euc_kr is not)


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = HEADER,
    encoding: str = "utf-8",
) -> Path:
    data = csv_bytes(header, rows, encoding)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_parquet(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = HEADER,
    row_group_size: int = 1000,
    typed: bool = True,
    casts: Mapping[str, Any] | None = None,
) -> Path:
    """Rows as Parquet; `typed` casts the numeric and date columns like a real writer would,
    `casts` casts more columns (or others differently), e.g. {"dong": pl.Categorical}."""
    import polars as pl

    frame = pl.DataFrame([list(r) for r in rows], schema=list(header), orient="row")
    if typed:
        all_casts = {
            "record_id": pl.Int64,
            "area_m2": pl.Float64,
            "floor": pl.Int32,
            "price_krw": pl.Int64,
            "contract_date": pl.Date,
            **(casts or {}),
        }
        frame = frame.with_columns(
            pl.col(name).str.to_date() if dtype == pl.Date else pl.col(name).cast(dtype)
            for name, dtype in all_casts.items()
            if name in frame.columns
        )
    frame.write_parquet(path, row_group_size=row_group_size)
    return path


def expected_rows(
    rows: Sequence[Sequence[str]], snapshot: SnapshotKey = SNAPSHOT
) -> list[tuple[str, ...]]:
    """Rows as the table should return them (text), sorted by record_id."""
    full = [
        (str(snapshot.year), str(snapshot.month), snapshot.region, snapshot.sigungu, *r)
        for r in rows
    ]
    return sorted(full, key=lambda r: int(r[4]))


@pytest.fixture
def preset() -> TablePreset:
    return load_preset("silver_stage_1_main")


@pytest.fixture
def conn(pg_url: str) -> Iterator:
    from data_platform.core.postgres import connect

    connection = connect(pg_url)
    yield connection
    connection.close()


def table_rows(
    conn, preset: TablePreset, snapshot: SnapshotKey | None = None
) -> list[tuple[str, ...]]:
    """Every row as text, sorted by record_id (optionally one snapshot only)."""
    from psycopg2 import sql

    from data_platform.core.postgres import qualified
    from data_platform.silver.tables import snapshot_condition

    columns = sql.SQL(", ").join(
        sql.SQL("{}::text").format(sql.Identifier(c)) for c in preset.column_names
    )
    where = snapshot_condition(preset, snapshot) if snapshot else sql.SQL("true")
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM {} AS t WHERE {} ORDER BY t.record_id").format(
                columns, qualified(preset.schema, preset.table), where
            )
        )
        rows = cur.fetchall()
    conn.rollback()
    return rows


def relations(conn, schema: str = "public") -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1",
            (schema,),
        )
        names = [r[0] for r in cur.fetchall()]
    conn.rollback()
    return names
