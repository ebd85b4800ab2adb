"""Demo steps: a second database with a sample `sales.orders` table, replicated into the platform
database with `merge`, then a few source rows changed and replicated again incrementally
(`run_demo`); the silver table copied into the "serving" database through Dagster
(`copy_to_serving`, with demo_serving.yaml, the spec the served code location reads)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from data_platform.core.postgres import PostgresSettings, connection
from data_platform.demo import DemoContext, DemoFailure, checks_passed, run_job
from data_platform.replication.tables import TableRef

SOURCE_DB = "replication_demo_source"
SERVING_DB = "serving"
SERVING_SPEC = Path(__file__).with_name("demo_serving.yaml")
SERVING_URL_VARIABLE = "DATA_PLATFORM_SERVING_PG_URL"
ROWS = 5_000
SPEC = """connections:
  demo_source: {url: "${DEMO_SOURCE_PG_URL}"}
  platform:    {url: "${DEMO_TARGET_PG_URL}"}
tables:
  - name: orders
    source: {connection: demo_source, table: sales.orders}
    target: {connection: platform, table: replica.orders}
    strategy: merge
    watermark: updated_at
"""
SAMPLE = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders (
    id bigint PRIMARY KEY, customer text, amount numeric(12,2), updated_at timestamptz NOT NULL,
    details jsonb);
INSERT INTO sales.orders
SELECT i, CASE WHEN i %% 50 = 0 THEN NULL ELSE 'Kim, "Min-ji" ' || i || E'\\nSeoul' END,
       i * 1.10, '2024-01-01'::timestamptz + i * interval '1 minute',
       jsonb_build_object('items', i %% 7, 'note', 'a\\b')
FROM generate_series(1, %s) AS i;
"""
CHANGES = """
UPDATE sales.orders SET amount = amount + 1, updated_at = now() WHERE id %% 500 = 0;
INSERT INTO sales.orders SELECT i, 'new customer ' || i, 9.99, now(), '{}'
FROM generate_series(%s + 1, %s + 5) AS i;
"""


def run_demo(ctx: DemoContext) -> None:
    from psycopg2 import sql

    server = PostgresSettings.from_url(ctx.pg_url).with_database("postgres")
    with connection(server) as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            name = sql.Identifier(SOURCE_DB)
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(name))
    source = server.with_database(SOURCE_DB)
    with connection(source) as conn, conn.cursor() as cur:
        cur.execute(SAMPLE, (ROWS,))
    ctx.say(f"source database {SOURCE_DB}: sales.orders with {ROWS:,} rows")
    spec = ctx.workdir / "replication.yaml"
    spec.write_text(SPEC)
    env = {"DEMO_SOURCE_PG_URL": source.url(with_password=True), "DEMO_TARGET_PG_URL": ctx.pg_url}
    run = replace(ctx, env={**ctx.env, **env})

    first = _replicate(run, str(spec))
    _expect(first, inserted=ROWS, updated=0, target_rows=ROWS)
    with connection(source) as conn, conn.cursor() as cur:
        cur.execute(CHANGES, (ROWS, ROWS))
    second = _replicate(run, str(spec))
    # 10 changed rows (the boundary row at the last high-water mark, id 5000, is one) + 5 new
    _expect(second, inserted=5, updated=10, target_rows=ROWS + 5)
    with connection(ctx.pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM replica.orders WHERE id % 500 = 0 AND amount = id * 1.10")
        if cur.fetchone()[0] != 0:
            raise DemoFailure("changed source rows did not reach replica.orders")
    ctx.say(f"replica.orders: {second['target_rows']:,} rows, watermark {second['high_water']}")


def environment(env: dict[str, str]) -> dict[str, str]:
    """A "serving" database beside the platform's, and the spec that copies silver into it, for
    the code location (and so Dagit) to read."""
    from data_platform.devstack import create_database

    server = PostgresSettings.from_url(env["DATA_PLATFORM_PG_URL"]).with_database("postgres")
    serving = create_database(server.url(with_password=True), SERVING_DB)
    return {"DATA_PLATFORM_REPLICATION_SPEC": str(SERVING_SPEC), SERVING_URL_VARIABLE: serving}


def copy_to_serving(ctx: DemoContext) -> None:
    """Demo step: the silver table copied into the serving database by the code location's
    replication asset (the spec of DATA_PLATFORM_REPLICATION_SPEC), then compared with silver."""
    from data_platform.replication.defs import JOB_NAME, asset_key
    from data_platform.replication.spec import load_spec

    (table,) = load_spec(SERVING_SPEC).tables
    result = run_job(JOB_NAME, [asset_key(table)])
    if not checks_passed(result):
        raise DemoFailure(f"job {JOB_NAME} failed or its checks did")
    silver = table_fingerprint(PostgresSettings.from_url(ctx.pg_url), table.source_table)
    served = table_fingerprint(
        PostgresSettings.from_url(ctx.env[SERVING_URL_VARIABLE]), table.target_table
    )
    if served != silver:
        raise DemoFailure(f"{table.target_table} holds {served}, {table.source_table} {silver}")
    ctx.say(
        f"job {JOB_NAME}: {table.source_table} copied to {SERVING_DB} {table.target_table}; "
        f"verified: the serving copy equals silver ({silver[0]:,} rows, md5 {silver[1][:12]})"
    )


def table_fingerprint(database: PostgresSettings, table: TableRef) -> tuple[int, str]:
    """Row count and an order-independent md5 over every row's text form."""
    from psycopg2 import sql

    query = sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '')"
        " FROM {} AS r"
    ).format(table.sql())
    with connection(database) as conn, conn.cursor() as cur:
        cur.execute(query)
        count, digest = cur.fetchone()
    return count, digest


def _replicate(ctx: DemoContext, spec: str) -> dict[str, Any]:
    done = ctx.run_cli("replicate", "run", "--spec", spec, "--json")
    return json.loads(done.stdout.splitlines()[0])


def _expect(result: dict[str, Any], **numbers: int) -> None:
    got = {key: result[key] for key in numbers}
    if result["status"] != "ok" or not result["checksum_match"] or got != numbers:
        raise DemoFailure(f"replication gave {got} (status {result['status']}), wanted {numbers}")
