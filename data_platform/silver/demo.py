"""Demo step: raw files for two months x two areas in S3 (a cp949 CSV, a gzipped CSV, a
multi-row-group Parquet), one sensor tick, the requested silver partitions materialized on the
Postgres-backed Dagster instance, and the row counts read back from Postgres."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import warnings
from typing import Any

from data_platform.core.partitions import SnapshotKey, parse_snapshot
from data_platform.demo import DemoContext, DemoFailure

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


def tick(defs: Any, instance: Any, cursor: str | None) -> Any:
    """One sensor evaluation, applying its partition requests and events as the daemon would."""
    import dagster as dg

    from data_platform.silver.defs import SENSOR_NAME

    with warnings.catch_warnings():  # resources are passed to the context below
        warnings.simplefilter("ignore", UserWarning)
        sensor = defs.get_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(
        cursor=cursor, instance=instance, resources=defs.resources
    ) as context:
        result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)
    return result


def run_demo(ctx: DemoContext) -> None:
    import dagster as dg
    from psycopg2 import sql

    from data_platform.core.postgres import connection, qualified
    from data_platform.definitions import defs
    from data_platform.silver.defs import silver_key
    from data_platform.silver.presets import load_preset

    preset = load_preset(PRESET)
    files = raw_files()
    client = ctx.s3_client()
    for key, (content, _rows) in files.items():
        client.put_object(Bucket=ctx.bucket, Key=f"raw/{preset.dataset}/{key}", Body=content)
    ctx.say(f"put {len(files)} raw files under s3://{ctx.bucket}/raw/{preset.dataset}/")

    logging.getLogger("dagster").setLevel(logging.WARNING)  # the sensor's own log lines
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME: the instance on the throwaway Postgres
    first = tick(defs, instance, None)
    ctx.say(f"sensor tick 1: {len(first.run_requests)} run requests")
    asset = defs.get_assets_def(silver_key(preset))
    for request in first.run_requests:
        result = dg.materialize(
            [asset],
            partition_key=request.partition_key,
            instance=instance,
            resources=defs.resources,
            tags=request.tags,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        checks = [c.passed for c in result.get_asset_check_evaluations()]
        if not result.success or not all(checks):
            raise DemoFailure(f"partition {request.partition_key} failed or its checks did")
        ctx.say(f"materialized {preset.name} [{request.partition_key}], checks passed")
    second = tick(defs, instance, first.cursor)
    if second.run_requests:
        raise DemoFailure("the sensor asked to load files it had already loaded")
    ctx.say("sensor tick 2: nothing new, no run requests")

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
    for identity, rows in sorted(counted.items()):
        ctx.say(f"  {preset.table} {identity[0]}-{identity[1]:02d} {identity[2]} {identity[3]}: "
                f"{rows} rows")  # fmt: skip
    if counted != expected:
        raise DemoFailure(f"Postgres holds {counted}, the raw files had {expected}")
    ctx.say("verified: every partition holds exactly the rows of its raw files")
