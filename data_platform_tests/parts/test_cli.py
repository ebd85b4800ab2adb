"""`data-platform parts` as a user runs it: a subprocess against a local supplier and Postgres."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from data_platform.parts.supplier_server import PART_NAMES, Reply, synthetic_catalog
from data_platform_tests.parts.conftest import PRICES_TABLE


def cli(*args: str, verbose: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "data_platform.cli", *(["-v"] if verbose else []), "parts", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def write_config(path: Path, base_url: str) -> Path:
    path.write_text(
        f'code = "shop"\nbase_url = "{base_url}"\ncar_types = ["아반떼", "쏘나타"]\n'
        "max_pages = 3\nmax_attempts = 2\nbackoff_seconds = 0.01\nmax_retry_rounds = 1\n"
        "round_delay_seconds = 0\ntimeout_seconds = 2\n",
        encoding="utf-8",
    )
    return path


def test_run_prints_json_and_failed_lists_what_still_fails(supplier, pg_url, tmp_path) -> None:
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=2, items_per_page=10))
    server.fail_always("쏘나타", 2, Reply(500))
    config = write_config(tmp_path / "shop.toml", server.base_url)
    common = ["--db-url", pg_url]

    done = cli("run", "--date", "2026-11-20", "--supplier-config", str(config), *common,
               "--store", str(tmp_path / "store"), "--json")  # fmt: skip

    assert done.returncode == 0, done.stderr
    summary, _, payload = done.stdout.partition("\n")
    assert summary.startswith("shop 2026-11-20: 5 requests, 4 ok, 1 failed, 0 healed, 1 still")
    result = json.loads(payload)
    assert {k: result[k] for k in ("requests", "succeeded", "failed", "still_failing")} == {
        "requests": 5, "succeeded": 4, "failed": 1, "still_failing": 1
    }  # fmt: skip
    assert result["offers"] == 30 and result["dropped"] == 0
    assert result["rows_upserted"] == 20 and result["skipped"] is False

    listed = cli("failed", "--date", "2026-11-20", "--supplier", "shop",
                 "--supplier-config", str(config), *common, "--json")  # fmt: skip

    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["page"], row["status"], row["attempts"], row["rounds"]) == (2, 500, 4, 1)
    plain = cli("failed", "--date", "2026-11-20", "--supplier-config", str(config), *common)
    assert plain.stdout.strip().endswith("1 failed URL(s) on 2026-11-20")

    # 쏘나타 leaves the config: its failing URL is no longer this supplier's business
    config.write_text(config.read_text().replace(', "쏘나타"', ""), encoding="utf-8")
    plain = cli("failed", "--date", "2026-11-20", "--supplier-config", str(config), *common)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == (
        "0 failed URL(s) on 2026-11-20 (1 of car types no longer configured left out)"
    )
    listed = cli("failed", "--date", "2026-11-20", "--supplier-config", str(config), *common,
                 "--json")  # fmt: skip
    assert json.loads(listed.stdout) == []
    assert "1 of car types no longer configured left out" in listed.stderr


def test_bad_input_gets_one_clear_line(tmp_path, pg_url) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('code = "Shop!"\nbase_url = "ftp://x"\ncar_types = []\nmax_pagez = 1\n')

    done = cli("run", "--date", "2026-11-20", "--supplier-config", str(bad),
               "--db-url", pg_url, "--store", str(tmp_path))  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.startswith("Error: ")
    assert "max_pagez: unknown key (allowed: code," in done.stderr
    assert "Traceback" not in done.stderr

    bad.write_text('code = "Shop!"\nbase_url = "ftp://x"\ncar_types = []\n')
    done = cli("run", "--date", "2026-11-20", "--supplier-config", str(bad),
               "--db-url", pg_url, "--store", str(tmp_path))  # fmt: skip
    assert "code: 'Shop!' is not allowed (expected: 1-63 lowercase" in done.stderr
    assert "base_url: 'ftp://x' is not allowed (expected: must start with http" in done.stderr
    assert "car_types: Tuple should have at least 1 item" in done.stderr
    assert "(expected: a non-empty list of names)" in done.stderr
    assert "Traceback" not in done.stderr

    wrong_day = cli("failed", "--date", "20-11-2026", "--db-url", pg_url)
    assert wrong_day.returncode == 2 and "use YYYY-MM-DD" in wrong_day.stderr


def test_a_day_in_the_future_is_refused_before_anything_is_fetched(
    supplier, pg_url, tmp_path
) -> None:
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=1, items_per_page=2))
    config = write_config(tmp_path / "shop.toml", server.base_url)
    later = (datetime.now(ZoneInfo("Asia/Seoul")).date() + timedelta(days=2)).isoformat()

    done = cli("run", "--date", later, "--supplier-config", str(config), "--db-url", pg_url,
               "--store", str(tmp_path / "store"))  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {later} is in the future (today is ")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert not server.hits and not (tmp_path / "store").exists()


def test_a_redirect_loop_is_reported_as_failed_and_the_day_is_loaded(
    supplier, pg_url, tmp_path
) -> None:
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=1, items_per_page=3))
    loop = "/parts?car_type=%EC%8F%98%EB%82%98%ED%83%80&page=1"  # 쏘나타 page 1, to itself
    server.fail_always("쏘나타", 1, Reply(302, location=loop))
    config = write_config(tmp_path / "shop.toml", server.base_url)

    done = cli("run", "--date", "2026-11-20", "--supplier-config", str(config), "--db-url", pg_url,
               "--store", str(tmp_path / "store"), "--json")  # fmt: skip

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.partition("\n")[2])
    assert (result["failed"], result["still_failing"], result["rows_upserted"]) == (1, 1, 3)
    [failing] = result["suppliers"][0]["still_failing"]
    assert failing["error"].startswith("TooManyRedirects")


@pytest.mark.parametrize(
    ("name_type", "check", "name", "expected"),
    [
        (  # COPY meets a part name where a number belongs and Postgres quotes it
            "integer",
            "",
            "1",
            "cannot upsert prices into parts_prices: invalid_text_representation (SQLSTATE "
            "22P02), column part_official_name, copy row 1: a price row does not fit the table's "
            "column types",
        ),
        (  # the INSERT breaks a CHECK and Postgres' DETAIL gives the whole row
            "text",
            "CONSTRAINT under_5000 CHECK (max_price < 5000)",
            "'오래된 부품'",
            "cannot upsert prices into parts_prices: check_violation (SQLSTATE 23514), table "
            "public.parts_prices, constraint under_5000: a price row breaks a constraint",
        ),
    ],
    ids=["type", "check"],
)
def test_a_table_refusing_the_prices_is_one_line_without_values(
    supplier, pg_url, tmp_path, name_type, check, name, expected
) -> None:
    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(PRICES_TABLE.format(name_type=name_type, check=check))
        cur.execute(f"INSERT INTO parts_prices VALUES ({name}, '그랜저', 1, 2, 1, 1, '2026-11-19')")
    conn.close()
    server = supplier(synthetic_catalog(["아반떼"], pages=1, items_per_page=4))
    config = write_config(tmp_path / "shop.toml", server.base_url)

    done = cli("run", "--date", "2026-11-20", "--supplier-config", str(config), "--db-url", pg_url,
               "--store", str(tmp_path / "s"), verbose=True)  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    for part in PART_NAMES:
        assert part not in output, output
    assert f"Error: {expected}" in done.stderr
    assert "(values are not shown)" in done.stderr
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT car_type FROM parts_prices")
        assert cur.fetchall() == [("그랜저",)]  # the table left as it was
    conn.close()


def test_a_failed_urls_table_refusing_a_failure_is_one_line_and_rolls_back(
    supplier, pg_url, tmp_path
) -> None:
    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        # A table someone changed after parts created it: the error text no longer fits.
        cur.execute(
            "CREATE TABLE parts_failed_urls (day date NOT NULL, supplier text NOT NULL,"
            " url text NOT NULL, car_type text NOT NULL, page integer NOT NULL, status integer,"
            " error varchar(3) NOT NULL, attempts integer NOT NULL,"
            " rounds integer NOT NULL DEFAULT 0,"
            " first_failed_at timestamptz NOT NULL DEFAULT now(),"
            " last_attempt_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (day, supplier, url))"
        )
    conn.close()
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=2, items_per_page=10))
    server.fail_always("쏘나타", 2, Reply(500))
    config = write_config(tmp_path / "shop.toml", server.base_url)

    done = cli("run", "--date", "2026-11-20", "--supplier-config", str(config), "--db-url", pg_url,
               "--store", str(tmp_path / "s"), verbose=True)  # fmt: skip

    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    [line] = [text for text in done.stderr.splitlines() if text.startswith("Error: ")]
    assert line.startswith(
        "Error: cannot record failed URLs in parts_failed_urls: string_data_right_truncation "
        "(SQLSTATE 22001)"
    ), line
    assert line.endswith("(values are not shown)"), line
    assert server.base_url not in line  # the failing URL is a row's value (-v logs name it)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM parts_failed_urls")
        assert cur.fetchone() == (0,)
    conn.close()
