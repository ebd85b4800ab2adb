"""`data-platform tiers` end to end on a local folder."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
from click.testing import CliRunner

from data_platform.cli import main
from data_platform_tests.tiers.conftest import START, build_history, same_rows


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["tiers", *args])
    return result.exit_code, result.output


def test_compact_manifest_state_changes_checkpoint_vacuum(local_store, tmp_path):
    history = build_history(local_store, 20, compact_all_but=20)
    root = str(local_store.root)
    code, out = run("compact", "--store", root, "--month", "2026-01", "--json")
    assert code == 0 and json.loads(out)["level_sizes"] == [4, 2]
    code, out = run("manifest", "--store", root, "--month", "2026-01")
    assert code == 0 and "L1: 2 files" in out and "20 hot files compacted" in out
    at = START + timedelta(minutes=95)
    output = tmp_path / "state.parquet"
    code, out = run("state", "--store", root, "--at", at.isoformat(), "--output", str(output))
    assert code == 0 and "live rows" in out
    assert same_rows(pl.read_parquet(output), history.state_at(at))
    code, out = run(
        "changes", "--store", root, "--start", START.isoformat(), "--end", at.isoformat(), "--json"
    )
    assert code == 0 and json.loads(out)["rows"] == 10 * 12
    code, out = run("checkpoint", "--store", root, "--month", "2026-02")
    assert code == 0 and "built from manifest version 1" in out
    code, out = run("vacuum", "--store", root, "--retention", "0s", "--dry-run")
    assert code == 0 and "would delete 0 objects" in out


def test_clear_one_line_errors(local_store):
    local_store.root.mkdir(parents=True)
    root = str(local_store.root)
    code, out = run("state", "--store", root, "--at", "2026-01-23T14:20:00")
    assert code == 2 and "has no time zone" in out
    code, out = run("state", "--store", root, "--provider", "oracle", "--at", "2026-01-23T14:20Z")
    assert code == 1 and "unknown provider 'oracle'" in out and "Traceback" not in out
    code, out = run("compact", "--store", root, "--month", "January")
    assert code == 1 and "is not YYYY-MM" in out
    code, out = run("vacuum", "--store", root, "--retention", "weekly")
    assert code == 2 and "use a number with d, h, m or s" in out


def test_store_urls_that_name_nothing_are_one_line_errors(tmp_path):
    missing = tmp_path / "no-such-store"
    at = "2026-01-23T14:20Z"
    for store, message in [
        ("foo://bucket/x", "unsupported object store URL 'foo://bucket/x'"),
        ("s3://", "'s3://' names no bucket"),
        (str(missing), f"store {missing} is not an existing folder"),
    ]:
        code, out = run("state", "--store", store, "--at", at)
        assert code == 1 and out.startswith(f"Error: {message}") and len(out.splitlines()) == 1
    code, out = run("compact", "--store", str(missing), "--month", "2026-01")
    assert code == 1 and "is not an existing folder" in out
    # ingest may start a new store, but what it reads from must be there
    args = ["--start", "2026-01-23T14:00Z", "--end", "2026-01-23T14:20Z"]
    code, out = run("ingest", "--store", str(missing), "--raw", str(tmp_path / "no-raw"), *args)
    assert code == 1 and f"store {tmp_path / 'no-raw'} is not an existing folder" in out
    assert not missing.exists()


def test_every_command_shows_an_example_in_its_help():
    from data_platform.tiers.cli import tiers

    for name in tiers.commands:
        code, out = run(name, "--help")
        assert code == 0 and f"Example:\n    data-platform tiers {name} --store " in out, name
