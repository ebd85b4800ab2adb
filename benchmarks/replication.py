"""Benchmark: `data-platform replicate run` against the seed's `psql | psql` + DELETE/INSERT.

A source database holds --rows rows (bigint key, text with commas, quotes, newlines and
backslashes, numeric, timestamptz, jsonb, NULLs); the target already holds --rows/2 of the
keys (every even key, with old values). Every run starts from a fresh copy of that target
(CREATE DATABASE ... TEMPLATE) and is a whole process (start-up counts):
- ours: `data-platform replicate run --spec ...` once per strategy (merge, upsert, delete_insert,
  replace), each with its checks (counts, checksum) as it always runs;
- the seed's way (seed 002 section 4): `psql -c "CREATE TABLE staging (LIKE target)"`, then
  `psql -c "\\copy (SELECT ...) TO STDOUT" | psql -c "\\copy staging FROM STDIN"`, then
  `psql -c "BEGIN; DELETE FROM target USING staging ...; INSERT INTO target SELECT * FROM staging;
  COMMIT"` and `DROP TABLE staging`, in one `sh -c` (PGPASSWORD in the environment).
Every run's final target is checked against the seed's (row count and a hash of every row).
Contenders run in rotating order for --repeat rounds; medians and per-round ratios are printed.
Goal: the fastest strategy >= 1.2x the seed's way.

    uv run python benchmarks/replication.py                  # 1,000,000 rows, 3 rounds
    uv run python benchmarks/replication.py --rows 100000 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from psycopg2 import sql

from data_platform import devstack
from data_platform.core.postgres import PostgresSettings, connect

STRATEGIES = ("merge", "upsert", "delete_insert", "replace")
SEED = "seed: psql | psql + DELETE/INSERT"
TABLE = "bench.orders"
COLUMNS = "id, note, amount, at, doc"
SOURCE_DDL = """
CREATE SCHEMA bench;
CREATE TABLE bench.orders (id bigint PRIMARY KEY, note text, amount numeric(18,4),
                           at timestamptz, doc jsonb);
"""
SOURCE_ROWS = """
INSERT INTO bench.orders
SELECT i,
       CASE WHEN i %% 17 = 0 THEN NULL WHEN i %% 19 = 0 THEN ''
            ELSE 'order ' || i || ', "rush"' || E'\\n' || 'back\\slash ' || md5(i::text) END,
       (i::bigint * 7919 %% 1000003) / 100.0,
       '2024-01-01'::timestamptz + i * interval '37 seconds',
       CASE WHEN i %% 23 = 0 THEN NULL
            ELSE jsonb_build_object('qty', i %% 9, 'sku', 'SKU-' || (i %% 997)) END
FROM generate_series(1, %(rows)s) AS i
"""
TARGET_ROWS = """
INSERT INTO bench.orders
SELECT i * 2, 'old', 0, '2020-01-01', '{}' FROM generate_series(1, %(rows)s / 2) AS i
"""
SPEC = """connections:
  source: {url: "${BENCH_SOURCE_URL}"}
  target: {url: "${BENCH_TARGET_URL}"}
tables:
  - name: orders
    source: {connection: source, table: bench.orders}
    target: {connection: target, table: bench.orders}
    strategy: STRATEGY
"""
PSQL = "psql -X -q -v ON_ERROR_STOP=1"
SEED_SCRIPT = f"""set -e
{PSQL} -d "$TGT" -c "CREATE TABLE bench.staging (LIKE bench.orders)"
{PSQL} -d "$SRC" -c "\\copy (SELECT {COLUMNS} FROM bench.orders) TO STDOUT" \\
  | {PSQL} -d "$TGT" -c "\\copy bench.staging ({COLUMNS}) FROM STDIN"
{PSQL} -d "$TGT" -c "BEGIN;
  DELETE FROM bench.orders t USING bench.staging s WHERE t.id = s.id;
  INSERT INTO bench.orders ({COLUMNS}) SELECT {COLUMNS} FROM bench.staging;
  COMMIT;"
{PSQL} -d "$TGT" -c "DROP TABLE bench.staging"
"""
CLI = str(Path(sys.executable).with_name("data-platform"))


def run_sql(url: str, statement: str, params: dict | None = None, autocommit: bool = False) -> list:
    conn = connect(url)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall() if cur.description else []
        if not autocommit:
            conn.commit()
        return rows
    finally:
        conn.close()


def fresh_target(admin: PostgresSettings, name: str) -> str:
    ident = sql.Identifier(name)
    run_sql(
        admin.url(with_password=True),
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident),
        autocommit=True,
    )
    run_sql(admin.url(with_password=True),
            sql.SQL("CREATE DATABASE {} TEMPLATE bench_target_template").format(ident),
            autocommit=True)  # fmt: skip
    url = admin.with_database(name).url(with_password=True)
    run_sql(url, "CHECKPOINT", autocommit=True)
    return url


def fingerprint(url: str) -> tuple:
    return tuple(
        run_sql(url, f"SELECT count(*), sum(hashtext(t::text)::numeric) FROM {TABLE} t")[0]
    )


def run_ours(strategy: str, source: str, target: str, workdir: Path) -> float:
    spec = workdir / f"{strategy}.yaml"
    spec.write_text(SPEC.replace("STRATEGY", strategy))
    env = {**os.environ, "BENCH_SOURCE_URL": source, "BENCH_TARGET_URL": target}
    started = time.perf_counter()
    done = subprocess.run([CLI, "replicate", "run", "--spec", str(spec), "--json"], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ours ({strategy}) failed: {done.stdout}{done.stderr}")
    return seconds


def run_seed(source: str, target: str, psql_dir: Path) -> float:
    src, tgt = PostgresSettings.from_url(source), PostgresSettings.from_url(target)
    env = {
        **os.environ,
        "PATH": f"{psql_dir}:{os.environ['PATH']}",
        "PGPASSWORD": src.password or "",
        "SRC": _no_password(src),
        "TGT": _no_password(tgt),
    }
    started = time.perf_counter()
    done = subprocess.run(["sh", "-c", SEED_SCRIPT], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the seed's way failed: {done.stderr}")
    return seconds


def _no_password(settings: PostgresSettings) -> str:
    return (f"host={settings.host} port={settings.port} dbname={settings.dbname} "
            f"user={settings.user}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", help="admin URL of a running server (default: a throwaway)")
    args = parser.parse_args()
    server = None if args.pg_url else devstack.start_postgres()
    admin = PostgresSettings.from_url(args.pg_url or server.url)
    psql_dir = devstack.find_postgres_bindir()
    try:
        source = devstack.create_database(admin.url(with_password=True), "bench_source")
        run_sql(source, SOURCE_DDL + SOURCE_ROWS, {"rows": args.rows})
        run_sql(source, "VACUUM ANALYZE bench.orders", autocommit=True)
        template = devstack.create_database(admin.url(with_password=True), "bench_target_template")
        run_sql(template, SOURCE_DDL + TARGET_ROWS, {"rows": args.rows})  # fmt: skip
        run_sql(template, "VACUUM ANALYZE bench.orders", autocommit=True)
        print(f"source: {args.rows:,} rows; target: {args.rows // 2:,} overlapping keys; "
              f"{args.repeat} rounds, rotating order")  # fmt: skip
        contenders = [SEED, *STRATEGIES]
        times: dict[str, list[float]] = {name: [] for name in contenders}
        expected = None
        with tempfile.TemporaryDirectory() as tmp:
            for round_no in range(args.repeat):
                shift = round_no % len(contenders)
                for name in contenders[shift:] + contenders[:shift]:
                    target = fresh_target(admin, "bench_target")
                    if name == SEED:
                        seconds = run_seed(source, target, psql_dir)
                    else:
                        seconds = run_ours(name, source, target, Path(tmp))
                    result = fingerprint(target)
                    expected = expected or result
                    if result != expected:
                        raise SystemExit(f"{name} left a different target: {result} != {expected}")
                    times[name].append(seconds)
                    print(f"  round {round_no + 1}: {name:<36} {seconds:6.2f} s", flush=True)
        seed = statistics.median(times[SEED])
        print(f"\n{'':38}{'median':>8}  seed/ours  per round")
        for name in contenders:
            median = statistics.median(times[name])
            rounds = " ".join(f"{s / o:.2f}" for s, o in zip(times[SEED], times[name], strict=True))
            ratio = "" if name == SEED else f"{seed / median:8.2f}x  {rounds}"
            label = name if name == SEED else f"ours: replicate run ({name})"
            print(f"{label:<38}{median:7.2f}s  {ratio}")
        best = min(STRATEGIES, key=lambda s: statistics.median(times[s]))
        ratio = seed / statistics.median(times[best])
        print(f"\nfastest strategy: {best}, {ratio:.2f}x the seed's way (goal >= 1.2x): "
              + ("met" if ratio >= 1.2 else "NOT met"))  # fmt: skip
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
