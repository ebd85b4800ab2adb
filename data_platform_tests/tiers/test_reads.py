"""Point-in-time reads against a brute-force replay, the read bound, checkpoints and vacuum."""

from __future__ import annotations

import random
from datetime import timedelta

import polars as pl
import pytest

from data_platform.tiers import compact_month, read_changes, read_state, upload_hot_tier, vacuum
from data_platform.tiers.checkpoint import write_checkpoint
from data_platform.tiers.manifest import FANOUT
from data_platform.tiers.reader import read_state_with_stats
from data_platform.tiers.verify import verify_month
from data_platform_tests.tiers.conftest import (
    START,
    CountingStore,
    build_history,
    changes_for_slot,
    same_rows,
)

SLOTS = 80


def test_read_state_equals_replay_at_50_random_moments(store):
    history = build_history(store, SLOTS, compact_all_but=3)
    rng = random.Random(3)
    span = (SLOTS + 6) * 10 * 60
    for _ in range(50):
        at = START - timedelta(minutes=30) + timedelta(seconds=rng.randrange(span))
        assert same_rows(read_state("aws", at, store=store), history.state_at(at)), at
    assert verify_month("aws", "2026-01", store=store).ok
    february = verify_month("aws", "2026-02", store=store)
    assert february.ok and len(february.pending) == 3


def test_read_changes_is_every_change_once_in_time_order(local_store):
    store = local_store
    history = build_history(store, SLOTS, compact_all_but=2)
    start, end = START + timedelta(minutes=95), START + timedelta(minutes=10 * 77)
    got = read_changes("aws", start, end, store=store)
    expected = pl.concat([f for slot, f in history.frames.items() if start <= slot < end])
    assert got["Time"].is_sorted()
    assert same_rows(got, expected)
    assert got.height == expected.height


def test_a_read_opens_checkpoint_manifests_and_at_most_7_files_per_level(local_store):
    build_history(local_store, SLOTS, compact_all_but=2)
    counting = CountingStore(local_store)
    at = START + timedelta(minutes=10 * SLOTS)
    state, stats = read_state_with_stats("aws", at, store=counting)
    data_files = [k for k in counting.opened if "/L" in k]
    hot_files = [k for k in counting.opened if "parquet_cp_hot" in k]
    assert sorted(counting.opened) == sorted(stats.objects)
    assert sum(k.endswith("checkpoint.parquet") for k in counting.opened) == 1
    assert sum(k.endswith("manifest.json") for k in counting.opened) == 2
    for level in (1, 2, 3):
        assert len([k for k in data_files if f"/L{level}_" in k]) < FANOUT
    # February: 6 compacted slots at level 0 and the 2-slot uncompacted hot tail.
    assert len(data_files) == 0 and len(hot_files) == 8
    assert len(counting.opened) == 11 and state.height > 0
    # January's 72 slots are one L2 file (64) and one L1 file (8).
    counting.opened.clear()
    read_state("aws", START + timedelta(hours=11, minutes=55), store=counting)
    assert sorted(k.rsplit("/", 1)[1][:2] for k in counting.opened) == [
        "L1",
        "L2",
        "ch",
        "ma",
        "ma",
    ]


def test_late_slot_in_a_past_month_refreshes_the_later_checkpoint(local_store):
    history = build_history(local_store, SLOTS)
    late = START - timedelta(minutes=10)  # before every other slot, in January
    frame = changes_for_slot(random.Random(99), 60, 12)
    key = upload_hot_tier(frame, late, "aws", store=local_store)
    history.frames[late] = frame.with_columns(pl.lit(late).alias("Time"))
    result = compact_month("aws", "2026-01", store=local_store)
    assert result.compacted_keys == [key]
    assert result.checkpoints == ["parquet_warm/aws/m8/2026/02/checkpoint.parquet"]
    at = START + timedelta(minutes=10 * SLOTS)
    _, stats = read_state_with_stats("aws", at, store=local_store)
    assert sum("/2026/01/L" in k for k in stats.objects) == 0  # the checkpoint is current
    assert same_rows(read_state("aws", at, store=local_store), history.state_at(at))


def test_stale_checkpoint_is_not_trusted(local_store):
    history = build_history(local_store, SLOTS)
    checkpoint = "parquet_warm/aws/m8/2026/02/checkpoint.parquet"
    with local_store.open(checkpoint) as stream:
        old_data, old_metadata = stream.read(), dict(stream.info.metadata)
    late = START - timedelta(minutes=20)
    frame = changes_for_slot(random.Random(5), 60, 12)
    upload_hot_tier(frame, late, "aws", store=local_store)
    history.frames[late] = frame.with_columns(pl.lit(late).alias("Time"))
    compact_month("aws", "2026-01", store=local_store)
    local_store.put(checkpoint, old_data, metadata=old_metadata)  # as if the refresh never ran
    at = START + timedelta(minutes=10 * SLOTS)
    state, stats = read_state_with_stats("aws", at, store=local_store)
    assert same_rows(state, history.state_at(at))
    assert any("/2026/01/L" in key for key in stats.objects)  # rebuilt from January's files
    assert write_checkpoint("aws", "2026-02", store=local_store).previous_sequence == 73
    state, stats = read_state_with_stats("aws", at, store=local_store)
    assert same_rows(state, history.state_at(at))
    assert not any("/2026/01/L" in key for key in stats.objects)


def test_vacuum_removes_merged_files_only_after_retention(store):
    history = build_history(store, SLOTS)
    before = {i.key for i in store.list("parquet_warm/") if "/L" in i.key}
    assert vacuum("aws", store=store).deleted == []
    result = vacuum("aws", store=store, retention=timedelta(0), dry_run=True)
    assert result.deleted and all(store.exists(k) for k in result.deleted)
    result = vacuum("aws", store=store, retention=timedelta(0))
    after = {i.key for i in store.list("parquet_warm/") if "/L" in i.key}
    live = {
        e.key
        for m in ("2026-01", "2026-02")
        for e in verify_month("aws", m, store=store).manifest.live_files()
        if "/L" in e.key
    }
    assert after == live and before - after == {k for k in result.deleted if "/L" in k}
    at = START + timedelta(minutes=10 * SLOTS)
    assert same_rows(read_state("aws", at, store=store), history.state_at(at))
    with pytest.raises(ValueError, match="timezone-naive"):
        read_state("aws", at.replace(tzinfo=None), store=store)
