"""The Dagster assets run for real on local folders: raw slots -> hot files -> warm tier."""

from __future__ import annotations

import gzip
import io
import random
from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from data_platform.core.objectstore import PreconditionFailed, object_store_from_url
from data_platform.resources import AwsSessionResource, ObjectStoreResource
from data_platform.tiers import ConcurrencyConflictError, compact_month, read_state, run_compaction
from data_platform.tiers.config import slot_of_hot_key
from data_platform.tiers.defs import (
    TiersStoreResource,
    conflict_backoff,
    defs,
    hot_key,
    raw_snapshots_key,
    warm_key,
)
from data_platform.tiers.ingest import raw_key
from data_platform.tiers.verify import verify_month
from data_platform_tests.automation import AutomationTicks
from data_platform_tests.tiers.conftest import upload_slots

DAY = datetime(2026, 1, 23, tzinfo=UTC)


def write_raw(root, slots: int) -> None:
    store = object_store_from_url(str(root))
    rng = random.Random(2)
    sps = [rng.randint(1, 3) for _ in range(50)]
    for index in range(slots):
        for _ in range(5):
            sps[rng.randrange(50)] = rng.randint(1, 3)
        frame = pl.DataFrame(
            {
                "InstanceType": [f"t{k}" for k in range(50)],
                "Region": ["r"] * 50,
                "AZ": ["z"] * 50,
                "SPS": sps,
            }
        )
        if index % 2:
            store.put(
                raw_key("aws", DAY + timedelta(minutes=10 * index), ".csv.gz"),
                gzip.compress(frame.write_csv().encode()),
            )
        else:
            buffer = io.BytesIO()
            frame.write_parquet(buffer)
            store.put(raw_key("aws", DAY + timedelta(minutes=10 * index)), buffer.getvalue())


def test_hot_then_warm_assets_with_checks(tmp_path):
    write_raw(tmp_path / "raw", 20)
    aws = AwsSessionResource()
    resources = {
        "raw_store": ObjectStoreResource(url=str(tmp_path / "raw"), aws=aws),
        "tiers_store": TiersStoreResource(url=str(tmp_path / "lake"), aws=aws, environment="test"),
    }
    definitions = defs(["aws"])
    assets = [a for a in definitions.assets if isinstance(a, dg.AssetsDefinition)]
    hot = dg.materialize(
        assets, resources=resources, partition_key="2026-01-23", selection=[hot_key("aws")]
    )
    metadata = hot.asset_materializations_for_node("tiers__aws__aws_hot")[0].metadata
    assert metadata["slots_written"].value == 20
    rows = metadata["dagster/row_count"].value
    assert rows >= 50  # the first slot's 50 rows, then each slot's changes
    assert metadata["dagster/uri"].value == f"{tmp_path / 'lake'}/test/parquet_cp_hot/aws/"
    warm = dg.materialize(
        assets, resources=resources, partition_key="2026-01-01", selection=[warm_key("aws")]
    )
    checks = {(c.check_name, c.partition): c.passed for c in warm.get_asset_check_evaluations()}
    assert checks == {
        ("manifest_readable", "2026-01-01"): True,
        ("hot_files_represented_once", "2026-01-01"): True,
    }
    [warm_event] = warm.asset_materializations_for_node("tiers__aws__aws_warm")
    assert 0 < warm_event.metadata["dagster/row_count"].value <= rows  # 16 of 20 slots merged
    store = object_store_from_url(str(tmp_path / "lake"))
    state = read_state("aws", DAY + timedelta(hours=4), store=store, environment="test")
    assert state.height == 50
    # A second day's run over the same raw data writes nothing new.
    again = dg.materialize(
        assets, resources=resources, partition_key="2026-01-23", selection=[hot_key("aws")]
    )
    [event] = again.asset_materializations_for_node("tiers__aws__aws_hot")
    assert event.metadata["slots_written"].value == 0


def with_raw_store() -> dg.Definitions:
    raw = ObjectStoreResource(url="unused", aws=AwsSessionResource())
    return dg.Definitions.merge(defs(["aws"]), dg.Definitions(resources={"raw_store": raw}))


def test_a_new_hot_day_requests_its_warm_month_and_nothing_else():
    ticks = AutomationTicks(with_raw_store(), warm_key("aws"))
    assert ticks.tick() == {}  # nothing changed yet
    ticks.materialized(hot_key("aws"), "2026-01-23")
    assert ticks.tick() == {warm_key("aws"): {"2026-01-01"}}
    assert ticks.tick() == {}  # handled: requested once


def test_hot_tier_runs_today_on_its_cron_and_both_tiers_carry_freshness():
    definitions = with_raw_store()
    graph = definitions.resolve_asset_graph()
    hot, warm = graph.get(hot_key("aws")), graph.get(warm_key("aws"))
    assert isinstance(hot.freshness_policy, dg.FreshnessPolicy)
    assert isinstance(warm.freshness_policy, dg.FreshnessPolicy)
    assert hot.parent_keys == {raw_snapshots_key("aws")}
    ticks = AutomationTicks(definitions, hot_key("aws"))
    tick = datetime.now(UTC).replace(minute=1, second=0, microsecond=0)
    assert ticks.tick(tick) == {}
    later = tick + timedelta(minutes=2)  # past the :02 tick
    assert ticks.tick(later) == {hot_key("aws"): {later.strftime("%Y-%m-%d")}}


def test_conflict_backoff_grows_with_jitter():
    waits = [conflict_backoff(n) for n in range(4)]
    assert all(1.0 * 2**n <= w <= 3.0 * 2**n for n, w in enumerate(waits))


class RacingStore:
    """Lets a rival compaction commit right before our manifest write: a real lost race."""

    def __init__(self, store, rival) -> None:
        self._store, self._rival = store, rival

    def put_if_match(self, key, data, etag, metadata=None):
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        return self._store.put_if_match(key, data, etag, metadata)

    def __getattr__(self, name):
        return getattr(self._store, name)


def test_losing_a_merge_race_raises_conflict_and_leaves_no_files(local_store):
    keys = [key for _, key, _ in upload_slots(local_store, 9)]
    compact_month("aws", "2026-01", store=local_store)  # 8 merged into L1, 1 left at level 0
    for _, key, _ in upload_slots(
        local_store, 16, seed=8, start=datetime(2026, 1, 31, 13, 30, tzinfo=UTC)
    ):
        keys.append(key)
    before = {i.key for i in local_store.list("parquet_warm/")}

    def rival() -> None:  # compacts 7 of the new slots: its merge takes our level-0 input
        for key in keys[9:16]:
            run_compaction(key, slot_of_hot_key(key), "aws", store=local_store)

    racing = RacingStore(local_store, rival)
    with pytest.raises(ConcurrencyConflictError, match="compacted by another process"):
        compact_month("aws", "2026-01", store=racing)
    report = verify_month("aws", "2026-01", store=local_store)
    assert report.ok and len(report.pending) == 9 and report.manifest.processed_count == 16
    new_files = {i.key for i in local_store.list("parquet_warm/") if "/L" in i.key} - before
    assert new_files == {e.key for e in report.manifest.live_files() if e.key in new_files}
    assert new_files  # the rival's merge, and nothing of the losing attempt
    assert not compact_month("aws", "2026-01", store=local_store).noop  # the rest, on retry
    assert verify_month("aws", "2026-01", store=local_store).manifest.processed_count == 25
    with pytest.raises(PreconditionFailed):
        local_store.put_if_absent(keys[0], b"hot files are written once")


def test_a_tiers_error_fails_the_step_with_its_message_and_no_chained_traceback(tmp_path):
    from data_platform.tiers.defs.assets import hot_asset

    aws = AwsSessionResource()
    resources = {
        "raw_store": ObjectStoreResource(url=str(tmp_path / "raw"), aws=aws),
        "tiers_store": TiersStoreResource(url=str(tmp_path / "lake"), aws=aws, environment="nope"),
    }
    daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")
    result = dg.materialize(
        [hot_asset("aws", daily)],
        resources=resources,
        partition_key="2026-01-23",
        raise_on_error=False,
    )
    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error.message.startswith("dagster._core.definitions.events.Failure: environment 'nope'")
    assert error.cause is None and error.context is None  # no engine traceback behind it
    assert failure.step_failure_data.user_failure_data.description.startswith("environment")
