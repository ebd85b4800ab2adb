"""Bad input is refused with one line naming what is wrong, and loses nothing (issue 18)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from click.testing import CliRunner

from data_platform.cli import main
from data_platform.core.objectstore import object_store_from_url
from data_platform.tiers import TiersError, read_state, upload_hot_tier, vacuum
from data_platform.tiers.config import get_config, hot_key
from data_platform.tiers.ingest import raw_key
from data_platform.tiers.reader import read_state_with_stats
from data_platform_tests.tiers.conftest import START, upload_slots

DAY = datetime(2026, 1, 23, tzinfo=UTC)
SNAPSHOT = pl.DataFrame(
    {"InstanceType": ["a", "b"], "Region": ["r", "r"], "AZ": ["z", "z"], "SPS": [1, 2]}
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["tiers", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def one_line_error(code: int, out: str) -> str:
    assert code == 1 and len(out.splitlines()) == 1 and out.startswith("Error: "), out
    return out


@pytest.fixture
def raw(tmp_path):
    return object_store_from_url(str(tmp_path / "raw"))


@pytest.fixture
def lake(tmp_path) -> str:
    (tmp_path / "lake").mkdir()
    return str(tmp_path / "lake")


def put_raw(raw, index: int, frame: pl.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    key = raw_key("aws", DAY + timedelta(minutes=10 * index))
    raw.put(key, buffer.getvalue())
    return key


def ingest(lake: str, raw, slots: int, *extra: str) -> tuple[int, str]:
    end = (DAY + timedelta(minutes=10 * slots)).isoformat()
    return run(
        "ingest", "--store", lake, "--raw", str(raw.root), "--start", DAY.isoformat(), "--end",
        end, *extra,
    )  # fmt: skip


def test_ingest_refuses_a_snapshot_with_no_rows_unless_allowed(raw, lake):
    put_raw(raw, 0, SNAPSHOT)
    empty = put_raw(raw, 1, SNAPSHOT.clear())
    out = one_line_error(*ingest(lake, raw, 2))
    assert empty in out and "--allow-empty" in out
    store = object_store_from_url(lake)
    at = DAY + timedelta(minutes=15)
    assert read_state("aws", at, store=store).height == 2  # the slot before is kept, nothing Ceased
    assert ingest(lake, raw, 2, "--allow-empty")[0] == 0
    assert read_state("aws", at, store=store).is_empty()


def test_ingest_refuses_a_fraction_in_an_integer_column(raw, lake):
    put_raw(raw, 0, SNAPSHOT.with_columns(pl.Series("SPS", [1.0, 2.7])))
    out = one_line_error(*ingest(lake, raw, 1))
    assert "'SPS' holds 2.7 at InstanceType='b', Region='r', AZ='z'" in out
    assert "Int32 would store as 2" in out
    assert not list(object_store_from_url(lake).list())
    put_raw(raw, 0, SNAPSHOT.with_columns(pl.Series("SPS", [1.0, 3.0])))  # whole floats are fine
    assert ingest(lake, raw, 1)[0] == 0
    assert read_state("aws", DAY, store=object_store_from_url(lake))["SPS"].to_list() == [1, 3]


def test_ingest_refuses_an_end_before_its_start_and_an_unrepresentable_start(raw, lake):
    put_raw(raw, 0, SNAPSHOT)
    args = ["ingest", "--store", lake, "--raw", str(raw.root)]
    start, end = "2026-01-24T00:00:00+00:00", "2026-01-23T00:30:00+00:00"
    out = one_line_error(*run(*args, "--start", start, "--end", end))
    assert f"end {end} is not after start {start}" in out
    out = one_line_error(*run(*args, "--start", "9999-12-31T23:59Z", "--end", end))
    assert "start 9999-12-31T23:59:00+00:00 is outside the supported months" in out


BAD_HOT_FILES = {
    "junk bytes": b"this is not parquet",
    "wrong types": SNAPSHOT.with_columns(pl.col("SPS").cast(pl.String), Ceased=False, Time=DAY),
    "no pk column": SNAPSHOT.drop("AZ").with_columns(Ceased=False, Time=DAY),
}


@pytest.mark.parametrize("bad", BAD_HOT_FILES, ids=list(BAD_HOT_FILES))
def test_a_hot_file_that_is_not_a_change_file_is_refused_by_compaction_and_reads(lake, bad):
    store = object_store_from_url(lake)
    list(upload_slots(store, 2))
    slot = START + timedelta(minutes=20)
    key = hot_key(get_config("aws"), slot)
    content = BAD_HOT_FILES[bad]
    if isinstance(content, pl.DataFrame):
        buffer = io.BytesIO()
        content.write_parquet(buffer)
        content = buffer.getvalue()
    store.put(key, content)
    out = one_line_error(*run("compact", "--store", lake, "--month", "2026-01"))
    assert key in out
    assert not list(store.list("parquet_warm/"))  # nothing was committed
    out = one_line_error(*run("state", "--store", lake, "--at", slot.isoformat()))
    assert key in out
    store.delete(key)
    assert run("compact", "--store", lake, "--month", "2026-01")[0] == 0


def test_out_of_range_moments_and_months_name_what_the_user_gave(lake):
    store = object_store_from_url(lake)
    upload_hot_tier(SNAPSHOT, DAY, "aws", store=store)
    out = one_line_error(*run("state", "--store", lake, "--at", "0001-01-15T00:00Z"))
    assert "at 0001-01-15T00:00:00+00:00 is outside the supported months 0001-02 to 9999-11" in out
    out = one_line_error(*run("compact", "--store", lake, "--month", "9999-12"))
    assert "month '9999-12' is outside the supported months" in out
    out = one_line_error(*run("checkpoint", "--store", lake, "--month", "0001-01"))
    assert "month '0001-01' is outside the supported months" in out


def test_a_far_future_read_works_and_skips_the_empty_years(lake):
    store = object_store_from_url(lake)
    upload_hot_tier(SNAPSHOT, DAY, "aws", store=store)
    run("compact", "--store", lake, "--month", "2026-01")
    upload_hot_tier(SNAPSHOT.head(1), datetime(2027, 3, 5, tzinfo=UTC), "aws", store=store)
    code, out = run("state", "--store", lake, "--at", "2110-01-01T00:00Z", "--json")
    assert code == 0 and '"rows": 2' in out
    # 84 years after the data it opens the months that hold data, not one manifest per month.
    assert json.loads(out)["objects_read"] < 20
    frame, _ = read_state_with_stats("aws", datetime(2110, 1, 1, tzinfo=UTC), store=store)
    assert frame["Time"].to_list() == [datetime(2027, 3, 5, tzinfo=UTC), DAY]


def spoil_sequence(body: dict) -> None:
    body["sequence"] = "seven"


def spoil_entry(body: dict) -> None:
    body["levels"][0][0]["first"] = None


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda body: [1, 2], "a JSON list, not an object"),
        (spoil_sequence, "sequence: Input should be a valid integer"),
        (spoil_entry, "levels.0.0.first: Input should be a valid integer"),
    ],
    ids=["json-list", "wrong-type", "wrong-entry-type"],
)
def test_a_manifest_of_the_wrong_shape_is_one_line(lake, spoil, problem):
    store = object_store_from_url(lake)
    upload_hot_tier(SNAPSHOT, DAY, "aws", store=store)
    run("compact", "--store", lake, "--month", "2026-01")
    key = "parquet_warm/aws/m8/2026/01/manifest.json"
    body = json.loads(store.get(key))
    spoiled = spoil(body)
    store.put(key, json.dumps(body if spoiled is None else spoiled).encode())
    for command in (["state", "--at", "2026-01-24T00:00Z"], ["compact", "--month", "2026-01"]):
        out = one_line_error(*run(command[0], "--store", lake, *command[1:]))
        assert f"manifest {key} is unreadable ({problem}" in out


def test_changes_refuse_an_end_before_the_start(lake):
    start, end = "2026-01-24T00:00:00+00:00", "2026-01-23T00:00:00+00:00"
    out = one_line_error(*run("changes", "--store", lake, "--start", start, "--end", end))
    assert f"end {end} is before start {start}" in out


def test_vacuum_refuses_a_negative_retention(lake):
    code, out = run("vacuum", "--store", lake, "--retention", "-1d")
    assert code == 2 and "'-1d' is negative" in out
    with pytest.raises(TiersError, match="retention -1 day, 0:00:00 is negative"):
        vacuum("aws", store=object_store_from_url(lake), retention=timedelta(days=-1))
