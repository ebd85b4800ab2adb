"""`data-platform replicate` as a user runs it: whole processes against two real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from data_platform.core.postgres import PostgresSettings, connect
from data_platform.replication.staging import MARKER, STAGING_PREFIX
from data_platform_tests.replication.conftest import (
    execute,
    fetch,
    kill_9_when,
    run_in_background,
)
from data_platform_tests.replication.test_engine import (
    make_duplicate_emails,
    make_source,
    make_target,
    staging_tables,
)

SPEC = """connections:
  src: {url: "${SOURCE_PG_URL}"}
  dst: {url: "${TARGET_PG_URL}"}
tables:
  - name: items
    source: {connection: src, table: raw.items}
    target: {connection: dst, table: raw.items}
    strategy: upsert
  - name: missing
    source: {connection: src, table: raw.nope}
    target: {connection: dst, table: raw.nope}
"""


def with_password(url: str) -> str:
    """The URL with a password: the server's own, or (trust auth ignores it) a made-up one."""
    settings = PostgresSettings.from_url(url)
    return replace(settings, password=secret(url)).url(with_password=True)


def secret(url: str) -> str:
    return PostgresSettings.from_url(url).password or "Pa55-w0rd-never-shown"


def cli(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "data_platform.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def setup_spec(tmp_path: Path, source_url: str, pg_url: str, spec: str = SPEC) -> dict[str, str]:
    (tmp_path / "replication.yaml").write_text(spec)
    return {"SOURCE_PG_URL": with_password(source_url), "TARGET_PG_URL": with_password(pg_url)}


def test_run_json_reports_every_table_and_fails_on_one(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    make_target(pg_url)
    env = setup_spec(tmp_path, source_url, pg_url)
    done = cli(
        "-v",
        "replicate",
        "run",
        "--spec",
        "replication.yaml",
        "--json",
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    items, missing = (json.loads(line) for line in done.stdout.splitlines())
    assert items["status"] == "ok" and items["error"] is None, done.stdout + done.stderr
    expected = {
        "table": "items",
        "strategy": "upsert",
        "source_rows": 100,
        "staged_rows": 100,
        "inserted": 50,
        "updated": 50,
        "deleted": 0,
        "target_rows": 150,
        "checksum_match": True,
    }
    assert {k: items[k] for k in expected} == expected and items["seconds"] > 0
    assert missing["status"] == "failed" and "raw.nope does not exist" in missing["error"]
    assert "1 of 2 table(s) copied, 1 failed" in done.stderr
    assert secret(pg_url) not in done.stdout + done.stderr


def test_dry_run_changes_nothing_and_table_selects(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    env = setup_spec(tmp_path, source_url, pg_url)
    done = cli("replicate", "run", "--dry-run", "--table", "items", env=env, cwd=tmp_path)
    assert "items: would upsert 100 source rows creating the target" in done.stdout
    assert "key id; 3 columns: id, name, price; binary COPY" in done.stdout
    assert fetch(pg_url, "SELECT to_regnamespace('raw')") == [(None,)]
    cli("replicate", "run", "--table", "items", env=env, cwd=tmp_path)
    again = cli("replicate", "run", "--dry-run", "--table", "items", env=env, cwd=tmp_path)
    assert "items: would upsert 100 source rows into the existing target" in again.stdout
    # never analyzed, the tables have no row estimates (reltuples -1): changed in place
    assert "binary COPY; in place: few source rows for the target's size" in again.stdout
    unknown = cli("replicate", "run", "--table", "nope", env=env, cwd=tmp_path, check=False)
    assert unknown.returncode == 1 and "no table named nope" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_password_never_appears_in_output_logs_or_errors(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    env = setup_spec(tmp_path, source_url, pg_url)
    outputs = [cli("-v", "replicate", "run", env=env, cwd=tmp_path, check=False)]
    outputs.append(cli("-v", "replicate", "run", "--dry-run", env=env, cwd=tmp_path, check=False))
    unreachable = PostgresSettings.from_url(with_password(pg_url))
    env["TARGET_PG_URL"] = env["TARGET_PG_URL"].replace(f":{unreachable.port}/", ":1/")
    failed = cli("-v", "replicate", "run", "--json", env=env, cwd=tmp_path, check=False)
    outputs.append(failed)
    assert "cannot connect to postgresql://postgres:***@" in failed.stdout
    outputs.append(cli("-v", "replicate", "sweep", env=env, cwd=tmp_path, check=False))
    for done in outputs:
        assert secret(pg_url) not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr


def test_sweep_drops_only_old_marked_staging_tables(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    env = setup_spec(tmp_path, source_url, pg_url)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    old, young, foreign = STAGING_PREFIX + "old", STAGING_PREFIX + "young", STAGING_PREFIX + "user"
    execute(
        pg_url,
        f"CREATE TABLE {old} (id int)",
        f"CREATE TABLE {young} (id int)",
        f"CREATE TABLE {foreign} (id int)",
        f"COMMENT ON TABLE {old} IS '{MARKER}2020-01-01T00:00:00+00:00'",
        f"COMMENT ON TABLE {young} IS '{MARKER}{now}'",
        f"COMMENT ON TABLE {foreign} IS 'somebody else''s table'",
    )
    dry = cli("replicate", "sweep", "--older-than", "1h", "--dry-run", env=env, cwd=tmp_path)
    assert f"would drop dst: public.{old}" in dry.stdout and young not in dry.stdout
    assert len(staging_tables(pg_url)) == 3
    done = cli("replicate", "sweep", "--older-than", "1h", env=env, cwd=tmp_path)
    assert "1 staging table(s) dropped in 1 target database(s)" in done.stdout
    assert sorted(staging_tables(pg_url)) == [(foreign,), (young,)]
    bad = cli("replicate", "sweep", "--older-than", "soon", env=env, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_kill_9_mid_copy_leaves_the_target_unchanged(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    make_target(pg_url)
    execute(
        source_url,
        "CREATE SCHEMA raw",
        # A view that trickles rows out (2 ms each), so the kill lands inside the COPY.
        "CREATE VIEW raw.items AS SELECT i AS id, 'slow ' || i AS name, i::numeric(10,2) AS price"
        " FROM generate_series(1, 2000) i, LATERAL (SELECT pg_sleep(0.002 + 0 * i)) AS pause",
    )
    spec = SPEC.split("  - name: missing")[0] + "    primary_key: [id]\n"
    env = setup_spec(tmp_path, source_url, pg_url, spec)
    before = fetch(pg_url, "SELECT * FROM raw.items ORDER BY id")
    process = run_in_background(tmp_path, env)
    copying = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%dp_staging_%'"
    kill_9_when(process, pg_url, copying)
    assert fetch(pg_url, "SELECT * FROM raw.items ORDER BY id") == before
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT relname FROM pg_class WHERE relname LIKE 'dp_staging_%'")
            assert cur.fetchall() == []
    finally:
        conn.close()
    swept = cli("replicate", "sweep", "--older-than", "0s", env=env, cwd=tmp_path)
    assert "0 staging table(s) dropped" in swept.stdout


def test_demo_step_replicates_and_then_copies_only_the_changes(tmp_path: Path, pg_url: str) -> None:
    from data_platform.demo import DemoContext
    from data_platform.replication import demo

    said: list[str] = []
    demo.run_demo(DemoContext(pg_url=pg_url, s3_endpoint="", workdir=tmp_path, say=said.append))
    assert fetch(pg_url, "SELECT count(*) FROM replica.orders") == [(demo.ROWS + 5,)]
    assert any('"inserted": 5, "updated": 10' in line for line in said)
    execute(
        pg_url.rsplit("/", 1)[0] + "/postgres",
        f"DROP DATABASE {demo.SOURCE_DB} WITH (FORCE)",
        autocommit=True,
    )


def test_undecodable_spec_and_huge_durations_give_one_line(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    env = setup_spec(tmp_path, source_url, pg_url)
    (tmp_path / "latin1.yaml").write_bytes("# caf\xe9\n".encode("latin-1") + SPEC.encode())
    done = cli("replicate", "run", "--spec", "latin1.yaml", env=env, cwd=tmp_path, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "latin1.yaml is not UTF-8 text (byte 5 is 0xe9); save it as UTF-8" in done.stderr
    for age in ("99999999999d", "999999998d", "9" * 400 + "s"):
        swept = cli("replicate", "sweep", "--older-than", age, env=env, cwd=tmp_path, check=False)
        assert swept.returncode == 2 and "Traceback" not in swept.stderr, swept.stderr
        assert "is too long (at most" in swept.stderr
    longest = cli("replicate", "sweep", "--older-than", "700000d", env=env, cwd=tmp_path)
    assert "0 staging table(s) dropped" in longest.stdout


def test_duplicate_keys_never_show_their_values(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    make_duplicate_emails(source_url, pg_url)
    spec = SPEC.split("tables:")[0] + (
        "tables:\n  - source: {connection: src, table: events}\n"
        "    target: {connection: dst, table: events}\n    primary_key: [email, day]\n"
    )
    env = setup_spec(tmp_path, source_url, pg_url, spec)
    for flags in ((), ("--json",), ("--dry-run",)):
        done = cli("-v", "replicate", "run", *flags, env=env, cwd=tmp_path, check=False)
        output = done.stdout + done.stderr
        assert done.returncode == 1 and "40 key(s) of primary_key (email, day)" in output
        assert "example.com" not in output and "Traceback" not in done.stderr


def test_dry_run_fails_where_the_run_fails(tmp_path: Path, source_url: str, pg_url: str) -> None:
    """The source's enum type is missing in the target: the plan reports what the run reports."""
    execute(
        source_url,
        "CREATE SCHEMA raw",
        "CREATE TYPE mood AS ENUM ('sad', 'happy')",
        "CREATE TABLE raw.items (id int PRIMARY KEY, feeling mood)",
        "INSERT INTO raw.items VALUES (1, 'happy')",
    )
    env = setup_spec(tmp_path, source_url, pg_url, SPEC.split("    strategy: upsert")[0])
    outputs = []
    for flags in (("--dry-run",), ()):
        done = cli("replicate", "run", *flags, env=env, cwd=tmp_path, check=False)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        outputs.append(done.stderr.splitlines()[0])
    expected = (
        "FAILED items (target left as it was): cannot create the target raw.items like the "
        'source: type "mood" does not exist; create the table (or what it needs) in the target '
        "database first"
    )
    assert outputs == [expected, expected]
    assert fetch(pg_url, "SELECT to_regnamespace('raw')") == [(None,)]


def test_rows_skipped_for_a_null_watermark_are_counted(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    execute(
        source_url,
        "CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz)",
        "INSERT INTO orders VALUES (1, NULL), (2, NULL), (3, '2024-01-01')",
    )
    spec = SPEC.split("tables:")[0] + (
        "tables:\n  - source: {connection: src, table: orders}\n"
        "    target: {connection: dst, table: orders}\n"
        "    watermark: updated_at\n    lookback: 1h\n    null_watermark: skip\n"
    )
    env = setup_spec(tmp_path, source_url, pg_url, spec)
    dry = cli("replicate", "run", "--dry-run", env=env, cwd=tmp_path)
    assert "orders: would merge 1 source rows (2 with a NULL watermark skipped)" in dry.stdout
    assert "2 row(s) with a NULL watermark would be skipped; nothing was changed" in dry.stdout
    done = cli("replicate", "run", "--json", env=env, cwd=tmp_path)
    numbers = json.loads(done.stdout)
    assert (numbers["staged_rows"], numbers["watermark_nulls"]) == (1, 2)
    assert (numbers["skipped_rows"], numbers["null_watermark"]) == (2, "skip")
    assert "1 of 1 table(s) copied, 0 failed" in done.stderr
    assert "2 row(s) with a NULL watermark skipped" in done.stderr
    again = cli("replicate", "run", env=env, cwd=tmp_path)
    assert "1 staged of 1 source rows (2 with a NULL watermark skipped)" in again.stdout
    assert fetch(pg_url, "SELECT id FROM orders") == [(3,)]


RESIDENT_NO = 8504231234567  # looks like a Korean resident registration number


@pytest.mark.parametrize(
    ("target_column", "expected"),
    [
        (  # bigint into integer is assignable: COPY meets the value and quotes it
            "contact text, resident_no integer",
            "numeric_value_out_of_range (SQLSTATE 22003), column resident_no",
        ),
        (
            "contact text CONSTRAINT no_example_org CHECK (contact NOT LIKE '%@example.org'), "
            "resident_no bigint",
            "check_violation (SQLSTATE 23514), table raw.people, constraint no_example_org",
        ),
        (
            "contact text, resident_no bigint CONSTRAINT one_person UNIQUE",
            "unique_violation (SQLSTATE 23505), table raw.people, constraint one_person",
        ),
    ],
    ids=["out-of-range", "check", "unique"],
)
def test_database_errors_name_the_column_or_constraint_never_the_value(
    tmp_path: Path, source_url: str, pg_url: str, target_column: str, expected: str
) -> None:
    execute(
        source_url,
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.people (id int PRIMARY KEY, contact text, resident_no bigint)",
        f"INSERT INTO raw.people VALUES (1, 'jane.doe@example.org', {RESIDENT_NO})",
    )
    execute(
        pg_url,
        "CREATE SCHEMA raw",
        f"CREATE TABLE raw.people (id int PRIMARY KEY, {target_column})",
        "INSERT INTO raw.people VALUES (2, NULL, NULL)",
    )
    if "UNIQUE" in target_column:
        execute(pg_url, f"UPDATE raw.people SET resident_no = {RESIDENT_NO}")
    spec = SPEC.split("tables:")[0] + (
        "tables:\n  - name: people\n    source: {connection: src, table: raw.people}\n"
        "    target: {connection: dst, table: raw.people}\n"
    )
    env = setup_spec(tmp_path, source_url, pg_url, spec)
    outputs = []
    for flags in ((), ("--json",)):
        done = cli("-v", "replicate", "run", *flags, env=env, cwd=tmp_path, check=False)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        outputs.append(done.stdout + done.stderr)
    [result] = [json.loads(line) for line in outputs[1].splitlines() if line.startswith("{")]
    assert result["error"].startswith(expected), result["error"]
    for output in outputs:
        assert str(RESIDENT_NO) not in output and "jane.doe" not in output, output
    assert fetch(pg_url, "SELECT id FROM raw.people") == [(2,)]  # the target left as it was
