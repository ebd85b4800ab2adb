"""Demo step: raw files for two months x two areas in S3 (a cp949 CSV, a gzipped CSV, a
multi-row-group Parquet), one sensor tick, the requested silver partitions materialized on the
Postgres-backed Dagster instance, and the row counts read back from Postgres."""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any

from data_platform.core.partitions import SnapshotKey, parse_snapshot
from data_platform.demo import (
    DemoContext,
    DemoFailure,
    checks_passed,
    run_sensor_requests,
    sensor_tick,
)

PRESET = "silver_stage_1_main"
HEADER = ["record_id", "dong", "complex_name", "address", "area_m2", "floor", "price_krw",
          "contract_date"]  # fmt: skip
GANGNAM = ("서울특별시", "강남구", ["역삼동", "삼성동", "대치동"])
HAEUNDAE = ("부산광역시", "해운대구", ["우동", "중동", "좌동"])


def sample_rows(snapshot: SnapshotKey, dongs: list[str], count: int) -> list[list[str]]:
    return [
        [
            str(snapshot.year * 1_000_000 + snapshot.month * 10_000 + i),
            dongs[i % len(dongs)],
            f'{dongs[i % len(dongs)]} 아파트 {i % 9}단지, "{i % 5}동"',
            f"{snapshot.region} {snapshot.sigungu} {dongs[i % len(dongs)]} {i}-1",
            f"{59 + i % 60}.84",
            str(1 + i % 30),
            str(400_000_000 + 1_000 * i),
            f"{snapshot.year}-{snapshot.month:02d}-{1 + i % 28:02d}",
        ]
        for i in range(count)
    ]


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([HEADER, *rows])
    return text.getvalue().encode(encoding)  # cp949 is exact in Python (only euc_kr is not)


def parquet_bytes(rows: list[list[str]], row_group_size: int) -> bytes:
    import polars as pl

    frame = pl.DataFrame(rows, schema=HEADER, orient="row").with_columns(
        pl.col("record_id", "floor", "price_krw").cast(pl.Int64),
        pl.col("area_m2").cast(pl.Float64),
        pl.col("contract_date").str.to_date(),
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def raw_files() -> dict[str, tuple[bytes, int]]:
    """Key (under raw/<dataset>/) -> (content, rows)."""
    files: dict[str, tuple[bytes, int]] = {}
    for month, counts in ((4, (1_200, 2_500)), (5, (800, 1_500))):
        gangnam = SnapshotKey(2024, month, GANGNAM[0], GANGNAM[1])
        haeundae = SnapshotKey(2024, month, HAEUNDAE[0], HAEUNDAE[1])
        g_rows = sample_rows(gangnam, GANGNAM[2], counts[0])
        h_rows = sample_rows(haeundae, HAEUNDAE[2], counts[1])
        if month == 4:
            files[f"{gangnam.path()}/deals_cp949.csv"] = (csv_bytes(g_rows, "cp949"), len(g_rows))
            files[f"{haeundae.path()}/deals.parquet"] = (parquet_bytes(h_rows, 500), len(h_rows))
        else:
            gz = gzip.compress(csv_bytes(g_rows, "utf-8"))
            files[f"{gangnam.path()}/deals.csv.gz"] = (gz, len(g_rows))
            half = len(h_rows) // 2
            files[f"{haeundae.path()}/part-0.csv"] = (csv_bytes(h_rows[:half], "utf-8-sig"), half)
            files[f"{haeundae.path()}/part-1.csv"] = (
                csv_bytes(h_rows[half:], "utf-8"),
                len(h_rows) - half,
            )
    return files


def run_demo(ctx: DemoContext) -> None:
    from psycopg2 import sql

    from data_platform.core.postgres import connection, qualified
    from data_platform.silver.defs import SENSOR_NAME, job_name, silver_key
    from data_platform.silver.presets import load_preset

    preset = load_preset(PRESET)
    files = raw_files()
    client = ctx.s3_client()
    for key, (content, _rows) in files.items():
        client.put_object(Bucket=ctx.bucket, Key=f"raw/{preset.dataset}/{key}", Body=content)
    ctx.say(f"put {len(files)} raw files under s3://{ctx.bucket}/raw/{preset.dataset}/")

    job = job_name(preset.dataset)
    first = sensor_tick(SENSOR_NAME)
    loads = run_sensor_requests(SENSOR_NAME, first, job, [silver_key(preset)])
    for request, result in zip(first.run_requests or [], loads, strict=True):
        if not checks_passed(result):
            raise DemoFailure(f"partition {request.partition_key} failed or its checks did")
    ctx.say(
        f"sensor {SENSOR_NAME} requested {len(loads)} partitions; job {job} loaded them, "
        "checks passed"
    )
    second = sensor_tick(SENSOR_NAME, first.cursor)
    if second.run_requests:
        raise DemoFailure("the sensor asked to load files it had already loaded")

    expected: dict[tuple[Any, ...], int] = {}
    for key, (_content, rows) in files.items():
        snapshot = parse_snapshot(key)
        identity = (snapshot.year, snapshot.month, snapshot.region, snapshot.sigungu)
        expected[identity] = expected.get(identity, 0) + rows
    with connection(ctx.pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT source_year, source_month, region, sigungu, count(*) FROM {} "
                "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            ).format(qualified(preset.schema, preset.table))
        )
        counted = {tuple(row[:4]): row[4] for row in cur.fetchall()}
    if counted != expected:
        raise DemoFailure(f"Postgres holds {counted}, the raw files had {expected}")
    rows = ", ".join(
        f"{y}-{m:02d} {sigungu} {n:,}" for (y, m, _r, sigungu), n in sorted(counted.items())
    )
    ctx.say(f"verified: every partition holds exactly the rows of its raw files ({rows})")
