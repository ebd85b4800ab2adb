"""Stores (local folder and moto S3), synthetic change data and a brute-force replay."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from data_platform.core.objectstore import ObjectStore, object_store_from_url

START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)  # 72 slots in January, the rest in February


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> ObjectStore:
    if request.param == "local":
        return object_store_from_url(str(tmp_path / "store"))
    s3_client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("bucket")
    return object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: s3_client)


@pytest.fixture
def local_store(tmp_path) -> ObjectStore:
    return object_store_from_url(str(tmp_path / "store"))


@dataclass
class History:
    """Hot-tier changes per slot as uploaded, for replaying by brute force."""

    frames: dict[datetime, pl.DataFrame] = field(default_factory=dict)

    def state_at(self, at: datetime) -> pl.DataFrame:
        rows = [f for slot, f in self.frames.items() if slot <= at]
        if not rows:
            return pl.DataFrame()
        replay: dict[tuple, dict] = {}
        for row in pl.concat(rows).sort("Time").iter_rows(named=True):
            replay[(row["InstanceType"], row["Region"], row["AZ"])] = row
        live = [r for r in replay.values() if not r["Ceased"]]
        return pl.DataFrame(live).drop("Ceased").sort(["InstanceType", "Region", "AZ"])


def changes_for_slot(rng: random.Random, keys: int, rows: int) -> pl.DataFrame:
    """`rows` distinct keys out of `keys`, a few of them ceased, SPS 1..3."""
    chosen = rng.sample(range(keys), rows)
    return pl.DataFrame(
        {
            "InstanceType": [f"m{k % 17}.{k // 17}" for k in chosen],
            "Region": [f"r{k % 3}" for k in chosen],
            "AZ": [f"az{k % 2}" for k in chosen],
            "SPS": [rng.randint(1, 3) for _ in chosen],
            "Ceased": [rng.random() < 0.1 for _ in chosen],
        }
    )


def upload_slots(
    store: ObjectStore,
    slots: int,
    *,
    seed: int = 7,
    keys: int = 60,
    rows: int = 12,
    start: datetime = START,
    environment: str = "production",
) -> Iterator[tuple[datetime, str, pl.DataFrame]]:
    from data_platform.tiers import upload_hot_tier

    rng = random.Random(seed)
    for index in range(slots):
        slot = start + timedelta(minutes=10 * index)
        frame = changes_for_slot(rng, keys, rows)
        key = upload_hot_tier(frame, slot, "aws", store=store, environment=environment)
        yield slot, key, frame


def build_history(store: ObjectStore, slots: int, *, compact_all_but: int = 0) -> History:
    """Upload `slots` slots, compacting each as it lands except the last `compact_all_but`."""
    from data_platform.tiers import run_compaction

    history = History()
    for index, (slot, key, frame) in enumerate(upload_slots(store, slots)):
        history.frames[slot] = frame.with_columns(pl.lit(slot).alias("Time"))
        if index < slots - compact_all_but:
            run_compaction(key, slot, "aws", store=store)
    return history


def same_rows(got: pl.DataFrame, expected: pl.DataFrame) -> bool:
    if expected.is_empty():
        return got.is_empty()
    expected = expected.select(got.columns).cast(got.schema)
    return got.sort(got.columns).equals(expected.sort(got.columns))


class CountingStore:
    """Delegates to a store and records every object a read opens."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self.opened: list[str] = []

    def get(self, key: str) -> bytes:
        self.opened.append(key)
        return self._store.get(key)

    def open(self, key: str):
        self.opened.append(key)
        return self._store.open(key)

    def __getattr__(self, name: str):
        return getattr(self._store, name)
