"""Benchmark: `data-platform replicate run` against the tools a user would pick instead.

A source database holds --rows rows (bigint key, text with commas, quotes, newlines and
backslashes, '' and NULL, numeric, timestamptz, jsonb); the target already holds --rows/2 of the
keys (every even key, with old values), so every strategy ends with the target equal to the
source. Every run starts from a fresh copy of that target (CREATE DATABASE ... TEMPLATE) and is
a whole process (start-up counts). Contenders, per strategy:
- ours: `data-platform replicate run --spec ... --json` with that strategy, with its checks
  (counts, checksum: the JSON's `verify_seconds` is printed as the checksum's cost); each run
  must have swapped a fresh table in (the JSON's `method`); and once more `replace` on a target
  the swap does not carry (a column statistics target), which takes TRUNCATE + INSERT, the way
  before the swap (for comparison, not a peer);
- the seed's way (seed 002 section 4), a delete_insert: `psql \\copy ... TO STDOUT | psql \\copy
  staging FROM STDIN`, DELETE + INSERT in one transaction, DROP of the staging table;
- pgcopydb (replace): `pgcopydb clone --drop-if-exists --filters` limited to the table (it loads
  into a table without indexes and builds them afterwards);
- postgres_fdw (replace, upsert, merge): one `psql` with `TRUNCATE + INSERT ... SELECT`,
  `INSERT ... SELECT ... ON CONFLICT DO UPDATE` or `MERGE ... USING` from the foreign table
  (server option fetch_size 10000; the server, user mapping and foreign table are set up once,
  in the target template, as a user would);
- dlt (merge): `sql_database` -> `postgres`, write_disposition="merge", pyarrow backend,
  loader_file_format="insert_values" (its default CSV path turns '' into NULL).
Every final target is checked against the source: row count and a hash of every row over the
source's columns, and the primary key still there; a contender whose result differs is marked
WRONG and is no peer. Contenders run in rotating order for --repeat rounds; medians are printed
and, per strategy, the ratio fastest correct peer / ours (>= 1.0 means ours is faster).

    flock -x /tmp/bench.lock uv run python benchmarks/replication.py      # 1 M rows, 3 rounds
    uv run python benchmarks/replication.py --rows 100000 --repeat 1       # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql

from data_platform import devstack
from data_platform.core.postgres import PostgresSettings, connect

STRATEGIES = ("replace", "upsert", "delete_insert", "merge")
TRUNCATE = "ours (replace truncate+insert)"
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
FDW_SETUP = """
CREATE EXTENSION postgres_fdw;
CREATE SERVER bench_source FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host %(host)s, port %(port)s, dbname %(dbname)s, fetch_size '10000');
CREATE USER MAPPING FOR CURRENT_USER SERVER bench_source
    OPTIONS (user %(user)s, password %(password)s);
CREATE SCHEMA fdw_source;
IMPORT FOREIGN SCHEMA bench LIMIT TO (orders) FROM SERVER bench_source INTO fdw_source;
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
FDW_SQL = {
    "replace": f"""BEGIN; TRUNCATE bench.orders;
        INSERT INTO bench.orders ({COLUMNS}) SELECT {COLUMNS} FROM fdw_source.orders; COMMIT;""",
    "upsert": f"""INSERT INTO bench.orders ({COLUMNS}) SELECT {COLUMNS} FROM fdw_source.orders
        ON CONFLICT (id) DO UPDATE SET note = excluded.note, amount = excluded.amount,
        at = excluded.at, doc = excluded.doc""",
    "merge": """MERGE INTO bench.orders t USING fdw_source.orders s ON t.id = s.id
        WHEN MATCHED THEN UPDATE SET note = s.note, amount = s.amount, at = s.at, doc = s.doc
        WHEN NOT MATCHED THEN INSERT (id, note, amount, at, doc)
        VALUES (s.id, s.note, s.amount, s.at, s.doc)""",
}
PGCOPYDB_FILTERS = "[include-only-table]\nbench.orders\n"
DLT_SCRIPT = """
import os, sys, dlt
from dlt.sources.sql_database import sql_table
table = sql_table(credentials=os.environ["SRC_URL"], schema="bench", table="orders",
                  backend="pyarrow", chunk_size=100_000)
pipeline = dlt.pipeline(pipeline_name="bench_orders", pipelines_dir=sys.argv[1],
                        destination=dlt.destinations.postgres(os.environ["TGT_URL"]),
                        dataset_name="bench", progress=None)
pipeline.run(table, write_disposition="merge", primary_key="id",
             loader_file_format="insert_values")
"""
CLI = str(Path(sys.executable).with_name("data-platform"))


@dataclass
class Contender:
    name: str
    strategy: str  # the strategy whose result it produces
    ours: bool
    run: Callable[[str, str, Path], float]  # (source URL, target URL, work dir) -> seconds
    note: str = ""  # what it leaves behind or changes beyond the rows


@dataclass
class Outcome:
    seconds: list[float]
    verify: list[float]
    wrong: str | None = None


def run_sql(url: str, statement: object, params: dict | None = None, autocommit: bool = False):
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
    admin_url = admin.url(with_password=True)
    run_sql(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident),
            autocommit=True)  # fmt: skip
    run_sql(admin_url, sql.SQL("CREATE DATABASE {} TEMPLATE bench_target_template").format(ident),
            autocommit=True)  # fmt: skip
    url = admin.with_database(name).url(with_password=True)
    run_sql(url, "CHECKPOINT", autocommit=True)
    return url


def fingerprint(url: str) -> tuple:
    """Rows and a hash of every row over the source's columns; whether the primary key is there."""
    rows = run_sql(url, f"SELECT count(*), sum(hashtext(({COLUMNS})::text)::numeric) FROM {TABLE}")
    has_key = run_sql(url, "SELECT count(*) FROM pg_index WHERE indrelid = %(t)s::regclass"
                      " AND indisprimary", {"t": TABLE})  # fmt: skip
    return (*rows[0], has_key[0][0] == 1)


def leftovers(url: str) -> str:
    """What a run left in the target besides the table: extra tables or columns."""
    tables = run_sql(url, "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace"
                     " n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN"
                     " ('pg_catalog', 'information_schema') AND (n.nspname, c.relname) <>"
                     " ('bench', 'orders') ORDER BY 1")  # fmt: skip
    columns = run_sql(url, "SELECT attname FROM pg_attribute WHERE attrelid = %(t)s::regclass"
                      " AND attnum > 0 AND NOT attisdropped AND attname LIKE '\\_dlt%%'",
                      {"t": TABLE})  # fmt: skip
    found = [t for (t,) in tables] + [f"column {c}" for (c,) in columns]
    return ", ".join(found)


def _timed(argv: list[str], env: dict, what: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{what} failed (exit {done.returncode}): {done.stdout}{done.stderr}")
    return seconds, done.stdout


def _no_password(url: str) -> str:
    s = PostgresSettings.from_url(url)
    return f"host={s.host} port={s.port} dbname={s.dbname} user={s.user}"


def _psql_env(source: str, target: str) -> dict:
    return {
        **os.environ,
        "PATH": f"{devstack.find_postgres_bindir()}:{os.environ['PATH']}",
        "PGPASSWORD": PostgresSettings.from_url(source).password or "",
        "SRC": _no_password(source),
        "TGT": _no_password(target),
    }


def ours(strategy: str, verify: list[float], method: str) -> Callable[[str, str, Path], float]:
    """Our CLI; `method` is the way the run must have taken (`swap`, `truncate+insert`)."""

    def run(source: str, target: str, workdir: Path) -> float:
        if method == "truncate+insert":
            # A per-column statistics target is one of the things a swap does not carry, so
            # this target is replaced by TRUNCATE + INSERT (the way before the swap).
            run_sql(target, f"ALTER TABLE {TABLE} ALTER COLUMN note SET STATISTICS 200")
        spec = workdir / f"{strategy}.yaml"
        spec.write_text(SPEC.replace("STRATEGY", strategy))
        env = {**os.environ, "BENCH_SOURCE_URL": source, "BENCH_TARGET_URL": target}
        argv = [CLI, "replicate", "run", "--spec", str(spec), "--json"]
        seconds, out = _timed(argv, env, f"ours ({strategy})")
        result = json.loads(out.splitlines()[0])
        if not (result["method"] or "").startswith(method):
            raise SystemExit(f"ours ({strategy}) went {result['method']!r}, not {method!r}")
        verify.append(result["verify_seconds"])
        return seconds

    return run


def seed(source: str, target: str, workdir: Path) -> float:
    return _timed(["sh", "-c", SEED_SCRIPT], _psql_env(source, target), "the seed's way")[0]


def fdw(strategy: str) -> Callable[[str, str, Path], float]:
    def run(source: str, target: str, workdir: Path) -> float:
        argv = ["sh", "-c", f'{PSQL} -d "$TGT" -c "$STATEMENT"']
        env = {**_psql_env(source, target), "STATEMENT": FDW_SQL[strategy]}
        return _timed(argv, env, f"postgres_fdw ({strategy})")[0]

    return run


def pgcopydb(source: str, target: str, workdir: Path) -> float:
    filters = workdir / "filters.ini"
    filters.write_text(PGCOPYDB_FILTERS)
    work = workdir / "pgcopydb"
    shutil.rmtree(work, ignore_errors=True)
    argv = ["pgcopydb", "clone", "--source", source, "--target", target, "--drop-if-exists",
            "--filters", str(filters), "--dir", str(work)]  # fmt: skip
    return _timed(argv, _psql_env(source, target), "pgcopydb")[0]


def dlt_merge(source: str, target: str, workdir: Path) -> float:
    pipelines = workdir / "dlt"
    shutil.rmtree(pipelines, ignore_errors=True)
    # SQLAlchemy 2.1 reads postgresql:// as psycopg 3; the project has psycopg2.
    driver = source.replace("postgresql://", "postgresql+psycopg2://", 1)
    env = {**os.environ, "SRC_URL": driver, "TGT_URL": target, "RUNTIME__LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-c", DLT_SCRIPT, str(pipelines)]
    return _timed(argv, env, "dlt")[0]


def contenders(verify: dict[str, list[float]]) -> list[Contender]:
    found = [Contender(f"ours ({s})", s, True, ours(s, verify[s], "swap")) for s in STRATEGIES]
    # The way replace went before the swap, for comparison (not a peer).
    verify[TRUNCATE] = []
    old_way = ours("replace", verify[TRUNCATE], "truncate+insert")
    found.append(Contender(TRUNCATE, "-", True, old_way))
    found.append(Contender("seed: psql | psql + DELETE/INSERT", "delete_insert", False, seed))
    if shutil.which("pgcopydb"):
        found.append(Contender("pgcopydb clone --filters", "replace", False, pgcopydb))
    else:
        print("pgcopydb skipped: not installed (apt-get update && apt-get install -y pgcopydb)")
    for strategy, label in (("replace", "TRUNCATE + INSERT"), ("upsert", "ON CONFLICT"),
                            ("merge", "MERGE")):  # fmt: skip
        found.append(Contender(f"postgres_fdw {label}", strategy, False, fdw(strategy)))
    try:
        import dlt  # noqa: F401
    except ImportError:
        print('dlt skipped: not installed (uv add --dev "dlt[postgres,sql-database,parquet]")')
    else:
        found.append(Contender("dlt merge (pyarrow, insert_values)", "merge", False, dlt_merge))
    return found


def setup(admin: PostgresSettings, rows: int) -> str:
    admin_url = admin.url(with_password=True)
    for name in ("bench_source", "bench_target", "bench_target_template"):
        run_sql(admin_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)), autocommit=True)  # fmt: skip
    source = devstack.create_database(admin_url, "bench_source")
    run_sql(source, SOURCE_DDL + SOURCE_ROWS, {"rows": rows})
    run_sql(source, "VACUUM ANALYZE bench.orders", autocommit=True)
    template = devstack.create_database(admin_url, "bench_target_template")
    run_sql(template, SOURCE_DDL + TARGET_ROWS, {"rows": rows})
    src = PostgresSettings.from_url(source)
    run_sql(template, FDW_SETUP, {"host": src.host, "port": str(src.port), "dbname": src.dbname,
                                  "user": src.user, "password": src.password or ""})  # fmt: skip
    run_sql(template, "VACUUM ANALYZE bench.orders", autocommit=True)
    return source


def report(found: list[Contender], outcomes: dict[str, Outcome], verify: dict) -> None:
    print(f"\n{'':44}{'median':>8}  rounds")
    for c in found:
        o = outcomes[c.name]
        state = f"  WRONG: {o.wrong}" if o.wrong else ""
        rounds = " ".join(f"{s:.2f}" for s in o.seconds)
        print(f"{c.name:<44}{statistics.median(o.seconds):7.2f}s  {rounds}{state}{c.note}")
    print(f"\n{'strategy':<15}{'ours':>8}{'checksum':>10}  {'fastest correct peer':<38}"
          f"{'peer':>8}  peer/ours")  # fmt: skip
    for strategy in STRATEGIES:
        if f"ours ({strategy})" not in outcomes:
            continue
        mine = statistics.median(outcomes[f"ours ({strategy})"].seconds)
        checks = statistics.median(verify[strategy]) if verify[strategy] else 0.0
        peers = [c for c in found if not c.ours and c.strategy == strategy
                 and not outcomes[c.name].wrong]  # fmt: skip
        if not peers:
            print(f"{strategy:<15}{mine:7.2f}s{checks:9.2f}s  (no correct peer)")
            continue
        best = min(peers, key=lambda c: statistics.median(outcomes[c.name].seconds))
        theirs = statistics.median(outcomes[best.name].seconds)
        print(f"{strategy:<15}{mine:7.2f}s{checks:9.2f}s  {best.name:<38}{theirs:7.2f}s"
              f"  {theirs / mine:.2f}x")  # fmt: skip
    if TRUNCATE in outcomes and "ours (replace)" in outcomes:
        old = statistics.median(outcomes[TRUNCATE].seconds)
        swap = statistics.median(outcomes["ours (replace)"].seconds)
        print(f"replace by swap vs by TRUNCATE + INSERT (ours, before): {swap:.2f}s vs {old:.2f}s"
              f" ({old / swap:.2f}x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", action="append", help="only contenders whose name has this")
    parser.add_argument("--pg-url", help="admin URL of a running server (default: a throwaway)")
    args = parser.parse_args()
    server = None if args.pg_url else devstack.start_postgres()
    admin = PostgresSettings.from_url(args.pg_url or server.url)
    try:
        source = setup(admin, args.rows)
        expected = fingerprint(source)
        verify: dict[str, list[float]] = {s: [] for s in STRATEGIES}
        found = [c for c in contenders(verify)
                 if not args.only or any(o in c.name for o in args.only)]  # fmt: skip
        print(f"source: {args.rows:,} rows; target: {args.rows // 2:,} overlapping keys; "
              f"{args.repeat} rounds, rotating order")  # fmt: skip
        outcomes = {c.name: Outcome([], []) for c in found}
        with tempfile.TemporaryDirectory() as tmp:
            for round_no in range(args.repeat):
                shift = round_no % len(found)
                for c in found[shift:] + found[:shift]:
                    target = fresh_target(admin, "bench_target")
                    seconds = c.run(source, target, Path(tmp))
                    result = fingerprint(target)
                    if result != expected:
                        outcomes[c.name].wrong = f"target {result} != source {expected}"
                    left = leftovers(target)
                    c.note = f"  (left: {left})" if left else ""
                    outcomes[c.name].seconds.append(seconds)
                    mark = " WRONG" if result != expected else ""
                    print(f"  round {round_no + 1}: {c.name:<44} {seconds:6.2f} s{mark}",
                          flush=True)  # fmt: skip
        report(found, outcomes, verify)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
