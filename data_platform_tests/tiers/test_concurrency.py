"""Real processes: 8 compacting one month at once, and kill -9 in the middle of compactions."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import polars as pl
import pytest

from data_platform.tiers import compact_month, read_changes, read_state, vacuum
from data_platform.tiers.verify import verify_month
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


def test_kill_9_during_compaction_then_a_clean_run(local_store):
    changes = uploaded(local_store)
    rng = random.Random(11)
    for round_ in range(4):
        worker = subprocess.Popen(
            [*WORKER, str(local_store.root), str(round_)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(1.0, 3.0))  # interpreter start-up is ~1 s of this
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    compact_month("aws", "2026-01", store=local_store)
    report = verify_month("aws", "2026-01", store=local_store)
    assert report.ok and not report.pending, report.problems
    got = read_changes("aws", START, START + timedelta(days=1), store=local_store)
    assert got.height == changes.height and same_rows(got, changes)
    live = {e.key for e in report.manifest.live_files()}
    before = {i.key for i in local_store.list("parquet_warm/") if "/L" in i.key}
    result = vacuum("aws", store=local_store, retention=timedelta(0))
    after = {i.key for i in local_store.list("parquet_warm/") if "/L" in i.key}
    assert after == {k for k in live if "/L" in k}
    assert set(result.deleted) >= before - after
    end = START + timedelta(minutes=10 * SLOTS)
    assert read_state("aws", end, store=local_store).height > 0
    with pytest.raises(ValueError, match="unknown provider"):
        vacuum("nope", store=local_store)
