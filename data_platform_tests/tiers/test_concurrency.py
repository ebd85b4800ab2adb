"""Real processes: 8 compacting one month at once, and kill -9 at known points of a commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import polars as pl
import pytest

from data_platform.tiers import compact_month, read_changes, read_state, vacuum
from data_platform.tiers.manifest import FANOUT
from data_platform.tiers.verify import verify_month
from data_platform_tests.tiers.compaction_worker import PAUSE_AFTER
from data_platform_tests.tiers.conftest import START, same_rows, upload_slots

WORKER = [sys.executable, "-m", "data_platform_tests.tiers.compaction_worker"]
SLOTS = 16  # all in January: two L1 merges racing


def worker_args(store, request) -> list[str]:
    if hasattr(store, "root"):
        return [str(store.root)]
    endpoint = request.getfixturevalue("s3_endpoint")
    return [f"s3://{store.bucket}/{store.prefix.rstrip('/')}", endpoint]


def uploaded(store) -> pl.DataFrame:
    frames = [
        f.with_columns(pl.lit(slot).alias("Time")) for slot, _, f in upload_slots(store, SLOTS)
    ]
    return pl.concat(frames)


def test_eight_processes_compacting_one_month(store, request):
    changes = uploaded(store)
    url_and_endpoint = worker_args(store, request)
    workers = [
        subprocess.Popen(
            [*WORKER, url_and_endpoint[0], str(seed), *url_and_endpoint[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(8)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0] * 8, [err[-2000:] for _, err in outputs]
    report = verify_month("aws", "2026-01", store=store)
    assert report.ok and not report.pending, report.problems
    assert report.manifest.processed_count == SLOTS
    got = read_changes("aws", START, START + timedelta(days=1), store=store)
    assert got.height == changes.height and same_rows(got, changes)
    # Losing attempts cleaned up after themselves: every L file is live or was merged away.
    warm = {i.key for i in store.list("parquet_warm/") if "/L" in i.key}
    assert {e.key for e in report.manifest.live_files() if "/L" in e.key} <= warm


@pytest.mark.parametrize("pause_after", ["merged", "version"])
def test_kill_9_at_known_points_of_a_commit_then_a_clean_run(store, request, pause_after):
    """Each round uploads 8 new slots, so the worker has a merge to do; it stops right after
    writing its merged file (or that commit's version file), is killed there, and the store must
    read correctly before and after a re-run completes the month."""
    url_and_endpoint = worker_args(store, request)
    uploaded = []
    for round_ in range(3):
        start = START + timedelta(minutes=10 * FANOUT * round_)
        uploaded += [
            f.with_columns(pl.lit(slot).alias("Time"))
            for slot, _, f in upload_slots(store, FANOUT, seed=round_, start=start)
        ]
        before = verify_month("aws", "2026-01", store=store).manifest
        worker = subprocess.Popen(
            [*WORKER, url_and_endpoint[0], "-1", *url_and_endpoint[1:]],  # in slot order
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {PAUSE_AFTER: pause_after},
        )
        line = worker.stdout.readline()  # blocks until the worker is parked at the pause point
        os.kill(worker.pid, signal.SIGKILL)
        _, err = worker.communicate(timeout=60)
        assert line.startswith("paused after "), (line, err[-2000:])
        assert worker.returncode == -signal.SIGKILL
        in_flight = line.removeprefix("paused after ").strip()
        assert ("/versions/" in in_flight) == (pause_after == "version")
        # The kill landed mid-commit: its file exists, and the head does not name it.
        assert store.exists(in_flight)
        report = verify_month("aws", "2026-01", store=store)
        assert report.ok, report.problems
        assert in_flight not in {e.key for e in report.manifest.live_files()}
        assert in_flight != report.manifest.version_key
        # 7 single-slot commits landed; the 8th, which merges, was in flight when killed.
        assert report.manifest.sequence == before.sequence + FANOUT - 1
        assert report.manifest.processed_count == len(uploaded) - 1
        end = START + timedelta(minutes=10 * len(uploaded))
        changes = pl.concat(uploaded)
        got = read_changes("aws", START, end, store=store)
        assert same_rows(got, changes)
        result = compact_month("aws", "2026-01", store=store)
        assert not result.noop
        report = verify_month("aws", "2026-01", store=store)
        assert report.ok and not report.pending, report.problems
        assert report.manifest.processed_count == len(uploaded)
        assert same_rows(read_changes("aws", START, end, store=store), changes)
    live = {e.key for e in report.manifest.live_files() if "/L" in e.key}
    vacuum("aws", store=store, retention=timedelta(0))
    assert {i.key for i in store.list("parquet_warm/") if "/L" in i.key} == live
    assert read_state("aws", end, store=store).height > 0
