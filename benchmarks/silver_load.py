"""Benchmark: `data-platform silver load` as a whole process against `psql \\copy`.

One generated CSV (Korean text, quoted commas; ~107 MB at 1 M rows) is loaded as one snapshot in
three shapes: UTF-8 CSV, a cp949 copy and a Parquet copy. Every run is a new process, as a user
runs it (start-up counts), in alternating order, on the same Postgres:
- ours: `data-platform silver load --local-dir ... --db-url ...` (default --jobs: parallel COPY
  streams) and with `--jobs 1` (one stream);
- `psql \\copy` (one psql process: TRUNCATE, then \\copy; ours drops the old partition inside
  its run too) into a plain table with the same column types, and into the snapshot's partition
  (Postgres checks its bound per row, as ours checks the staging table's CHECK). For Parquet,
  psql loads the UTF-8 CSV (it cannot read Parquet); for cp949 it uses ENCODING 'UHC'.
- server-side `COPY table FROM 'file'` into the plain table (Postgres reads the file itself; no
  client moves a row): the physical limit of one COPY stream here.
- Parquet only: ADBC's Postgres driver (`adbc_ingest`, two connections) loading the Parquet
  file into the plain table, the library route the C encoder was measured against (issue 21).
- pandas `read_csv(chunksize=50_000)` + `to_sql(method='multi')`, the seed's way, on the first
  --pandas-rows rows only (its rows/s is compared).
Medians of --repeat rounds and the per-round ratios are printed. Goal: ours >= 1.3x psql.

    uv run python benchmarks/silver_load.py                       # 1,000,000 rows
    uv run python benchmarks/silver_load.py --rows 200000 --repeat 3 --pandas-rows 0
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from data_platform import devstack
from data_platform.core.partitions import SnapshotKey
from data_platform.core.postgres import PostgresSettings, connect
from data_platform.silver.loader import ensure_table
from data_platform.silver.presets import load_preset
from data_platform.silver.tables import leaf_name

SNAPSHOT = SnapshotKey(2024, 5, "서울특별시", "강남구")
HEADER = "record_id,dong,complex_name,address,area_m2,floor,price_krw,contract_date"
DATA_COLUMNS = HEADER.split(",")
DONGS = ["역삼동", "삼성동", "대치동", "개포동", "청담동", "논현동", "압구정동", "신사동"]
NAMES = ["래미안", "자이", "힐스테이트", "푸르지오", "아이파크", "롯데캐슬", "e편한세상"]
PSQL_TABLE = "psql_target"
PANDAS_TABLE = "pandas_target"
CLI = str(Path(sys.executable).with_name("data-platform"))


def generate_csv(path: Path, rows: int) -> None:
    rnd = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        lines = []
        for i in range(rows):
            dong, name = DONGS[i % 8], NAMES[i % 7]
            lines.append(
                f'{i},{dong},"{name} {i % 97}단지, {i % 13}동","강남구 {dong} {i % 1000}-{i % 37}",'
                f"{rnd.randint(2000, 20000) / 100},{i % 40},{rnd.randint(10**8, 5 * 10**9)},"
                f"2024-05-{1 + i % 28:02d}\n"
            )
            if len(lines) == 50_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)


def convert(source: Path, cp949: Path, parquet: Path) -> None:
    import polars as pl

    with source.open(encoding="utf-8", newline="") as src, cp949.open("wb") as out:
        while chunk := src.read(1 << 22):
            out.write(chunk.encode("cp949"))  # cp949 encoding is exact (unlike euc_kr)
    frame = pl.read_csv(source, schema_overrides={"contract_date": pl.Date})
    frame.write_parquet(parquet, row_group_size=100_000)


def snapshot_folder(root: Path, name: str) -> Path:
    folder = root / name / SNAPSHOT.path()
    folder.mkdir(parents=True)
    return folder


def interleaved(repeat: int, runs: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Seconds of each run per round; each round starts with the next run in turn, so every run
    sees the same machine load and none always goes first."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_index in range(repeat):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - started)
    return times


def ours(url: str, folder: Path, jobs: int | None) -> Callable[[], None]:
    """`data-platform silver load` as a user runs it: a new process each time."""
    command = [CLI, "silver", "load", "--local-dir", str(folder), "--db-url", url]
    if jobs is not None:
        command += ["--jobs", str(jobs)]

    def run() -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    return run


def run_psql(url: str, psql: str, *commands: str) -> None:
    """One psql process running `commands`; the password goes by environment, so no command
    line (or error showing one) carries it."""
    settings = PostgresSettings.from_url(url)
    env = {**os.environ, "PGPASSWORD": settings.password or ""}
    script = [arg for command in commands for arg in ("-c", command)]
    without_password = dataclasses.replace(settings, password=None).url()
    subprocess.run(
        [psql, without_password, "-q", "-v", "ON_ERROR_STOP=1", *script], check=True, env=env
    )


def psql_copy(url: str, psql: str, table: str, csv_path: Path, encoding: str) -> Callable[[], None]:
    """One psql process that empties `table` and copies the file in, as ours replaces the
    snapshot (its old partition is dropped inside the timed run too)."""
    copy = (
        f"\\copy {table} ({HEADER}) from '{csv_path}' "
        f"with (format csv, header true, encoding '{encoding}')"
    )
    return lambda: run_psql(url, psql, f"TRUNCATE {table}", copy)


def server_copy(
    url: str, psql: str, table: str, csv_path: Path, encoding: str
) -> Callable[[], None]:
    """Postgres reads the file itself (`COPY ... FROM 'file'`, no client moves a row): the
    physical limit of one COPY stream here. Sent by one psql process, TRUNCATE first."""
    copy = (
        f"COPY {table} ({HEADER}) FROM '{csv_path}' "
        f"WITH (FORMAT csv, HEADER true, ENCODING '{encoding}')"
    )
    return lambda: run_psql(url, psql, f"TRUNCATE {table}", copy)


# The library route for Parquet (ADBC's Postgres driver, binary COPY from polars' Arrow data):
# empties the plain table, then two connections take 50,000-row batches in turn, as ours does.
# Types must match the table exactly: integer wants Int32, numeric a Decimal (through the
# shortest text, as ours sends it; scale 30 is exact for numeric(10,2)).
ADBC_SCRIPT = """
import os, sys, threading
import adbc_driver_postgresql.dbapi as adbc
import polars as pl
path, table = sys.argv[1:]
with adbc.connect(os.environ["BENCH_ADBC_URI"], autocommit=True) as conn, conn.cursor() as cur:
    cur.execute(f"TRUNCATE {table}")
batches = iter(
    pl.scan_parquet(path)
    .with_columns(
        pl.col("area_m2").cast(pl.String).cast(pl.Decimal(38, 30)),
        pl.col("floor").cast(pl.Int32, strict=True),
    )
    .collect_batches(chunk_size=50_000)
)
lock = threading.Lock()
def stream():
    with adbc.connect(os.environ["BENCH_ADBC_URI"], autocommit=False) as conn:
        with conn.cursor() as cur:
            while True:
                with lock:
                    batch = next(batches, None)
                if batch is None:
                    break
                cur.adbc_ingest(table, batch, mode="append")
        conn.commit()
threads = [threading.Thread(target=stream) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def adbc_ingest(url: str, table: str, parquet_path: Path) -> Callable[[], None]:
    """A Python process that loads the Parquet file with ADBC (`ADBC_SCRIPT`); the URL goes by
    environment, so no command line carries its password."""
    env = {**os.environ, "BENCH_ADBC_URI": url}
    command = [sys.executable, "-c", ADBC_SCRIPT, str(parquet_path), table]
    return lambda: subprocess.run(command, check=True, env=env)


def pandas_load(url: str, path: Path, rows: int, kind: str) -> float:
    """Seconds for the seed's pandas way on the first `rows` rows."""
    import pandas as pd
    import polars as pl
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.begin() as db:
        db.execute(text(f"DROP TABLE IF EXISTS {PANDAS_TABLE}"))
    started = time.perf_counter()
    if kind == "parquet":  # no pyarrow here: polars reads, pandas writes
        frame = pl.read_parquet(path, n_rows=rows)
        chunks = [pd.DataFrame(frame.to_dict(as_series=False))]
    else:
        encoding = "cp949" if kind == "cp949" else "utf-8"
        chunks = pd.read_csv(path, encoding=encoding, chunksize=50_000, nrows=rows)
    for chunk in chunks:
        for name, value in zip(
            ("source_year", "source_month", "region", "sigungu"),
            (SNAPSHOT.year, SNAPSHOT.month, SNAPSHOT.region, SNAPSHOT.sigungu),
            strict=True,
        ):
            chunk[name] = value
        chunk.to_sql(
            PANDAS_TABLE, engine, if_exists="append", index=False, method="multi", chunksize=50_000
        )
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def prepare_tables(url: str) -> None:
    conn = connect(url)
    try:
        ensure_table(conn, load_preset("silver_stage_1_main"))
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {PSQL_TABLE} ("
                "source_year integer NOT NULL DEFAULT 2024, source_month integer NOT NULL "
                "DEFAULT 5, region text NOT NULL DEFAULT '서울특별시', sigungu text NOT NULL "
                "DEFAULT '강남구', record_id bigint, dong text, complex_name text, address text, "
                "area_m2 numeric(10,2), floor integer, price_krw bigint, contract_date date)"
            )
        conn.commit()
    finally:
        conn.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pandas-rows", type=int, default=50_000, help="0 skips pandas")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["csv", "cp949", "parquet"], default=None)
    parser.add_argument("--db-url", default=None, help="default: a throwaway devstack Postgres")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="silver-bench-"))
    work.chmod(0o755)  # the server reads the CSV itself for the server-side COPY line
    server = None
    try:
        csv_path = snapshot_folder(work, "utf8") / "data.csv"
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate_csv(csv_path, args.rows)
        cp949_path = snapshot_folder(work, "cp949") / "data.csv"
        parquet_path = snapshot_folder(work, "parquet") / "data.parquet"
        convert(csv_path, cp949_path, parquet_path)
        for path in (csv_path, cp949_path, parquet_path):
            print(f"  {path.relative_to(work)}: {path.stat().st_size / 1e6:.1f} MB")
        if args.db_url:
            url = args.db_url
        else:
            server = devstack.start_postgres()
            url = server.url
        psql = shutil.which("psql") or str(devstack.find_postgres_bindir() / "psql")
        prepare_tables(url)
        leaf = leaf_name(load_preset("silver_stage_1_main"), SNAPSHOT)
        ours(url, work / "utf8", None)()  # creates the snapshot's partition for psql to load into
        print(
            f"Postgres {PostgresSettings.from_url(url).url()}, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; median of {args.repeat} "
            "alternating rounds, every run a new process"
        )
        pandas_rows = min(args.pandas_rows, args.rows)
        lines = [
            ("utf-8 csv", work / "utf8", csv_path, "UTF8", csv_path, "csv"),
            ("cp949 csv", work / "cp949", cp949_path, "UHC", cp949_path, "cp949"),
            ("parquet", work / "parquet", csv_path, "UTF8", parquet_path, "parquet"),
        ]
        for label, folder, psql_file, psql_encoding, pandas_file, kind in lines:
            if args.only and kind != args.only:
                continue
            adbc = "ADBC ingest, plain table"
            extra = {adbc: adbc_ingest(url, PSQL_TABLE, pandas_file)} if kind == "parquet" else {}
            times = interleaved(
                args.repeat,
                {
                    "ours": ours(url, folder, None),
                    **extra,
                    "ours --jobs 1": ours(url, folder, 1),
                    "psql \\copy, plain table": psql_copy(
                        url, psql, PSQL_TABLE, psql_file, psql_encoding
                    ),
                    "psql \\copy, partition": psql_copy(url, psql, leaf, psql_file, psql_encoding),
                    "server COPY FROM file": server_copy(
                        url, psql, PSQL_TABLE, psql_file, psql_encoding
                    ),
                },
            )
            note = " (psql loads the UTF-8 CSV)" if kind == "parquet" else ""
            print(f"\n{label}{note}")
            for name, runs in times.items():
                print(
                    f"  {name:26s} {median(runs):6.2f} s {args.rows / median(runs):11,.0f} rows/s"
                    f"   runs {' '.join(f'{t:.2f}' for t in runs)}"
                )
            for anchor in (
                "psql \\copy, plain table",
                "psql \\copy, partition",
                "server COPY FROM file",
                *extra,
            ):
                for name in ("ours", "ours --jobs 1"):
                    per_round = [a / o for a, o in zip(times[anchor], times[name], strict=True)]
                    ratio = median(times[anchor]) / median(times[name])
                    print(
                        f"  {name} vs {anchor}: {ratio:.2f}x (per round "
                        f"{' '.join(f'{r:.2f}' for r in per_round)})"
                    )
            if pandas_rows:
                pandas_s = pandas_load(url, pandas_file, pandas_rows, kind)
                pandas_rate = pandas_rows / pandas_s
                ours_rate = args.rows / median(times["ours"])
                print(
                    f"  pandas to_sql {pandas_s:.2f} s on the first {pandas_rows:,} rows "
                    f"({pandas_rate:,.0f} rows/s): ours is {ours_rate / pandas_rate:.0f}x"
                )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
