"""`data-platform silver load` end to end: real Postgres, real moto S3 server."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.core.partitions import SnapshotKey
from data_platform.silver.cli import silver
from data_platform.silver.presets import load_preset
from data_platform_tests.silver.conftest import (
    HEADER,
    SNAPSHOT,
    csv_bytes,
    expected_rows,
    relations,
    sample_rows,
    snapshot_dir,
    table_rows,
    write_csv,
    write_parquet,
)

SECOND = SnapshotKey(2024, 6, "부산광역시", "해운대구")


def run(*args: str):
    return CliRunner().invoke(silver, ["load", *args], catch_exceptions=False)


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    write_csv(snapshot_dir(root) / "a.csv", sample_rows(30), encoding="cp949")
    write_parquet(snapshot_dir(root, SECOND) / "b.parquet", sample_rows(20, 100))
    return root


def test_dry_run_lists_snapshots_and_changes_nothing(conn, pg_url: str, raw: Path) -> None:
    result = run("--local-dir", str(raw), "--dry-run", "--db-url", pg_url)
    assert result.exit_code == 0, result.output
    assert f"{SNAPSHOT.path()}: 1 file(s), 30 rows (cp949)" in result.output
    assert "a.csv  cp949  30 rows" in result.output
    assert "b.parquet  parquet  20 rows" in result.output
    assert "nothing was changed" in result.output
    assert relations(conn) == []


def test_local_load_and_reload(conn, pg_url: str, raw: Path) -> None:
    for _ in range(2):
        result = run("--local-dir", str(raw), "--db-url", pg_url, "--chunk-rows", "7")
        assert result.exit_code == 0, result.output
    assert f"loaded {SNAPSHOT.path()}: 1 file(s), 30 rows (cp949)" in result.output
    assert "2 snapshot(s), 50 rows into public.silver_stage_1_main" in result.output
    preset = load_preset("silver_stage_1_main")
    assert table_rows(conn, preset, SNAPSHOT) == expected_rows(sample_rows(30))
    assert table_rows(conn, preset, SECOND) == expected_rows(sample_rows(20, 100), SECOND)


def test_pg_environment_is_used_without_db_url(conn, pg_url: str, raw: Path, monkeypatch) -> None:
    from data_platform.core.postgres import PostgresSettings

    settings = PostgresSettings.from_url(pg_url)
    for name, value in {
        "PGHOST": settings.host,
        "PGPORT": str(settings.port),
        "PGDATABASE": settings.dbname,
        "PGUSER": settings.user,
        "PGPASSWORD": settings.password or "",
    }.items():
        monkeypatch.setenv(name, value)
    result = run("--local-dir", str(raw), "--file-format", "csv")
    assert result.exit_code == 0, result.output
    assert "1 snapshot(s), 30 rows" in result.output


def test_load_straight_from_s3(conn, pg_url, s3_client, s3_endpoint, bucket, aws_env, tmp_path):
    prefix = "raw/silver_stage_1_main/"
    s3_client.put_object(
        Bucket=bucket,
        Key=f"{prefix}{SNAPSHOT.path()}/a.csv",
        Body=csv_bytes(HEADER, sample_rows(40), "utf-8-sig"),
    )
    parquet = write_parquet(tmp_path / "b.parquet", sample_rows(25, 100), row_group_size=10)
    s3_client.put_object(
        Bucket=bucket, Key=f"{prefix}{SECOND.path()}/b.parquet", Body=parquet.read_bytes()
    )
    s3_client.put_object(Bucket=bucket, Key="raw/other/year=2024/x.csv", Body=b"ignored")
    result = run(
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--endpoint-url",
        s3_endpoint,
        "--db-url",
        pg_url,
        "--chunk-rows",
        "8",
    )
    assert result.exit_code == 0, result.output
    assert "2 snapshot(s), 65 rows" in result.output
    assert "(utf-8-sig)" in result.output
    preset = load_preset("silver_stage_1_main")
    assert table_rows(conn, preset, SECOND) == expected_rows(sample_rows(25, 100), SECOND)


def test_infer_schema_writes_a_reviewable_preset_and_loads(conn, pg_url: str, tmp_path) -> None:
    header = ["단지명", "거래금액", "전용면적", "계약일", "법정동코드", "큰수"]
    rows = [
        [
            f"래미안 {i}차, 101동",
            str(10**9 * i),
            f"{59 + i}.9",
            f"2024-05-{1 + i:02d}",
            f"0{1168010100 + i}",
            str(10**12 * (i + 1)),
        ]
        for i in range(9)
    ]
    write_csv(snapshot_dir(tmp_path / "raw") / "t.csv", rows, header=header, encoding="cp949")
    presets = tmp_path / "presets"
    args = [
        "--local-dir",
        str(tmp_path / "raw"),
        "--db-url",
        pg_url,
        "--table",
        "apt_trades",
        "--presets-dir",
        str(presets),
    ]
    refused = run(*args)
    assert refused.exit_code == 1
    assert "no table preset named 'apt_trades'" in refused.output

    result = run(*args, "--infer-schema")
    assert result.exit_code == 0, result.output
    saved = presets / "apt_trades.toml"
    assert str(saved) in result.output
    document = tomllib.loads(saved.read_text(encoding="utf-8"))
    assert document["table"] == "apt_trades"
    assert document["columns"] == {
        "source_year": "integer",
        "source_month": "integer",
        "region": "text",
        "sigungu": "text",
        "단지명": "text",
        "거래금액": "bigint",
        "전용면적": "numeric",
        "계약일": "date",
        "법정동코드": "text",
        "큰수": "bigint",
    }
    assert "Review the types" in saved.read_text(encoding="utf-8")
    assert "1 snapshot(s), 9 rows into public.apt_trades" in result.output
    with conn.cursor() as cur:
        cur.execute('SELECT "법정동코드", "단지명" FROM apt_trades ORDER BY "거래금액" LIMIT 1')
        assert cur.fetchone() == ("01168010100", "래미안 0차, 101동")
    conn.rollback()  # an open read would make the reload wait for its lock
    again = run(*args)  # the saved preset is used from now on
    assert again.exit_code == 0, again.output


def test_bad_file_exits_non_zero_and_other_snapshots_still_load(conn, pg_url, raw) -> None:
    (snapshot_dir(raw) / "z.csv").write_bytes(csv_bytes(HEADER, sample_rows(2)) + b"1,2\n")
    result = run("--local-dir", str(raw), "--db-url", pg_url)
    assert result.exit_code == 1
    assert f"FAILED {SNAPSHOT.path()} (left as it was)" in result.output
    assert "z.csv: data row 3 (line 4)" in result.output
    assert "1 of 2 snapshot(s) failed" in result.output
    preset = load_preset("silver_stage_1_main")
    assert table_rows(conn, preset, SNAPSHOT) == []
    assert len(table_rows(conn, preset, SECOND)) == 20


def test_usage_errors_are_clear(tmp_path: Path, monkeypatch) -> None:
    assert "either --local-dir or --bucket" in run().output
    folder = tmp_path / "empty"
    folder.mkdir()
    assert "no .csv, .csv.gz or .parquet files under" in run("--local-dir", str(folder)).output
    write_csv(snapshot_dir(folder) / "a.csv", sample_rows(1))
    monkeypatch.delenv("RDS_HOST", raising=False)
    result = run("--local-dir", str(folder), "--target", "rds")
    assert result.exit_code == 1
    assert "--target rds needs RDS_HOST" in result.output
    broken = tmp_path / "broken" / "year=2024" / "month=13" / "region=r" / "sigungu=s"
    broken.mkdir(parents=True)
    write_csv(broken / "a.csv", sample_rows(1))
    output = run("--local-dir", str(tmp_path / "broken")).output
    assert "month=13 is not a 2-digit month 01-12" in output


@pytest.mark.parametrize(
    ("db_url", "said"),
    [
        ("postgresql://u@127.0.0.1:notaport/db", "port 'notaport'"),
        ("postgresql://u@127.0.0.1:99999/db", "port '99999'"),
        ("postgresql://u:pw@[::1/db", "IPv6"),
    ],
)
def test_bad_db_url_is_one_error_line(raw: Path, db_url: str, said: str) -> None:
    result = run("--local-dir", str(raw), "--db-url", db_url)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and said in line


def test_a_role_that_does_not_own_the_table_gets_one_error_line(
    conn, pg_url: str, raw: Path
) -> None:
    import secrets

    from data_platform.core.postgres import PostgresSettings

    assert run("--local-dir", str(raw), "--db-url", pg_url).exit_code == 0
    before = table_rows(conn, load_preset("silver_stage_1_main"))
    role, password = f"reader_{secrets.token_hex(4)}", secrets.token_hex(8)
    with conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        cur.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    conn.commit()
    settings = PostgresSettings.from_url(pg_url)
    url = f"postgresql://{role}:{password}@{settings.host}:{settings.port}/{settings.dbname}"
    try:
        result = run("--local-dir", str(raw), "--db-url", url)
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert "must be owner of table" in result.output
        assert table_rows(conn, load_preset("silver_stage_1_main")) == before
        assert not [r for r in relations(conn) if r.endswith("_new")]  # no staging left
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP OWNED BY {role}")
            cur.execute(f"DROP ROLE {role}")
        conn.commit()


def test_a_table_name_leaving_the_presets_dir_is_refused(raw: Path, tmp_path: Path) -> None:
    presets = tmp_path / "presets"
    args = ["--local-dir", str(raw), "--table", "../escaped", "--infer-schema"]
    args += ["--presets-dir", str(presets)]
    dry = run(*args, "--dry-run")
    assert dry.exit_code == 1
    assert "must be letters, digits" in dry.output
    assert run(*args, "--db-url", "postgresql://u@127.0.0.1:1/x").exit_code == 1
    assert not (tmp_path / "escaped.toml").exists()
    assert not presets.exists() or not any(presets.iterdir())


NAME = "홍길동"  # a person's name where a number belongs
ADDRESS = "서울특별시 강남구 비밀로 7-1"


def test_bad_values_are_located_but_never_shown_even_with_verbose(conn, pg_url, tmp_path) -> None:
    """A name in an integer column, and a row whose snapshot columns contradict its folder
    (Postgres quotes the whole row for that): the file, row, column and its type are named,
    the values nowhere, through the real CLI with -v."""
    raw = tmp_path / "raw"
    rows = sample_rows(5)
    rows[2][5] = NAME  # floor is integer
    write_csv(snapshot_dir(raw) / "name.csv", rows)
    header = ["source_year", "source_month", "region", "sigungu", *HEADER]
    contradicting = [[str(SECOND.year), "06", SECOND.region, SECOND.sigungu, *r] for r in rows]
    contradicting[1] = ["2024", "06", SECOND.region, "수영구", *sample_rows(1)[0]]
    contradicting[1][7] = ADDRESS
    contradicting[2][9] = "3"  # the name only in the first file
    write_csv(snapshot_dir(raw, SECOND) / "moved.csv", contradicting, header=header)
    command = ["-v", "silver", "load", "--local-dir", str(raw), "--db-url", pg_url]
    done = subprocess.run(
        [sys.executable, "-m", "data_platform.cli", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    for value in (NAME, ADDRESS, "비밀로", "수영구"):
        assert value not in output, output
    assert (
        "name.csv: data row 3 (line 4), column floor: invalid_text_representation "
        "(SQLSTATE 22P02): the value does not fit the column of type integer" in output
    )
    assert (
        "moved.csv: data row 2 (line 3): the row's source_year, source_month, region, sigungu "
        "contradict the file's path year=2024/month=06/region=부산광역시/sigungu=해운대구" in output
    )
    assert "2 of 2 snapshot(s) failed" in output
    assert relations(conn) == ["silver_stage_1_main"]  # no partition, no staging table left
