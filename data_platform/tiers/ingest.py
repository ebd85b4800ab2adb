"""Raw 10-minute snapshots (`rawdata/<provider>/YYYY/MM/DD/HH-MM.parquet|.csv.gz`) -> hot files.

Each slot is diffed against the raw slot before it (looking back one day for the first); a slot
with no earlier snapshot counts every row as changed. Slots already in the hot tier with the same
content are left as they are, so a re-run writes nothing.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from data_platform.core.objectstore import ObjectInfo, ObjectStore
from data_platform.tiers.changes import detect_changes
from data_platform.tiers.config import TiersError, get_config, hot_key, require_aware
from data_platform.tiers.hot import prepare_for_upload, upload_hot_tier

RAW_EXTENSIONS = (".parquet", ".csv.gz")


@dataclass
class IngestResult:
    slots: int = 0
    written: int = 0
    unchanged: int = 0
    rows: int = 0


def raw_key(provider: str, slot: datetime, extension: str = ".parquet") -> str:
    return f"rawdata/{provider}/{slot:%Y/%m/%d/%H-%M}{extension}"


def raw_slot(key: str) -> datetime | None:
    """The slot a raw key names, or None for a key that is not a raw snapshot."""
    extension = next((e for e in RAW_EXTENSIONS if key.endswith(e)), None)
    if extension is None:
        return None
    tail = "/".join(key[: -len(extension)].split("/")[-4:])
    try:
        slot = datetime.strptime(tail, "%Y/%m/%d/%H-%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    return slot if slot.minute % 10 == 0 else None


def list_raw_slots(
    raw_store: ObjectStore, provider: str, start: datetime, end: datetime
) -> list[tuple[datetime, ObjectInfo]]:
    """Raw snapshots with start ≤ slot < end, in slot order."""
    found: dict[datetime, ObjectInfo] = {}
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        for info in raw_store.list(f"rawdata/{provider}/{day:%Y/%m/%d}/"):
            slot = raw_slot(info.key)
            if slot is not None and start <= slot < end:
                found.setdefault(slot, info)
        day += timedelta(days=1)
    return sorted(found.items(), key=lambda item: item[0])


def read_raw(raw_store: ObjectStore, key: str) -> pl.DataFrame:
    data = raw_store.get(key)
    try:
        if key.endswith(".csv.gz"):
            return pl.read_csv(io.BytesIO(gzip.decompress(data)))
        return pl.read_parquet(io.BytesIO(data))
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise TiersError(f"raw snapshot {key} is unreadable: {exc}") from None


def ingest_raw(
    provider: str,
    start: datetime,
    end: datetime,
    *,
    raw_store: ObjectStore,
    store: ObjectStore,
    environment: str = "production",
    on_slot: Callable[[IngestResult], None] | None = None,
    allow_empty: bool = False,
) -> IngestResult:
    """Write the hot file of every raw slot in [start, end) that is not written yet.

    A raw snapshot with no rows would mark every key Ceased; it is refused (after the slots
    before it are written) unless `allow_empty`.
    """
    config = get_config(provider)
    start, end = require_aware(start, "start"), require_aware(end, "end")
    if end <= start:
        raise TiersError(
            f"end {end.isoformat()} is not after start {start.isoformat()}: the slots read are "
            "start <= slot < end"
        )
    slots = list_raw_slots(raw_store, provider, start, end)
    earlier = list_raw_slots(raw_store, provider, start - timedelta(days=1), start)
    previous = read_raw(raw_store, earlier[-1][1].key) if earlier else None
    result = IngestResult()
    for slot, info in slots:
        current = read_raw(raw_store, info.key)
        if current.is_empty() and not allow_empty:
            raise TiersError(
                f"raw snapshot {info.key} has no rows; refusing to mark every key Ceased "
                f"(the {result.slots} slot(s) before it are written). Ingest with --allow-empty "
                "(allow_empty=True) if the provider really listed nothing."
            )
        if previous is None:
            changed, removed = detect_changes(current.clear(), current, provider)
        else:
            changed, removed = detect_changes(previous, current, provider)
        existed = store.exists(hot_key(config, slot, environment))
        combined = prepare_for_upload(changed, removed)
        if upload_hot_tier(combined, slot, provider, store=store, environment=environment):
            result.written += not existed
            result.unchanged += existed
        result.slots += 1
        result.rows += combined.height
        previous = current
        if on_slot is not None:
            on_slot(result)
    return result
