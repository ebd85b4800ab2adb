"""Point-in-time reads: the state at any moment and the changes in any interval.

A read of month M opens: M's manifest, the previous month's manifest (to check that M's state
checkpoint is current), the checkpoint, the live files of M's manifest whose time range starts at
or before the moment (≤ 7 per level, level 0 being hot files) and the hot files written after the
last compacted slot. Files are sorted by Time with row-group statistics, so rows after the
moment are skipped while decoding.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from data_platform.core.objectstore import ObjectNotFound, ObjectStore
from data_platform.tiers.config import (
    CEASED,
    TIME,
    ProviderConfig,
    TiersError,
    get_config,
    hot_key,
    month_hot_prefix,
    month_of,
    month_warm_prefix,
    next_month,
    parse_month,
    previous_month,
    require_aware,
    slot_of_hot_key,
)
from data_platform.tiers.frames import (
    check_parquet_schema,
    empty_frame,
    latest_per_key,
    parquet_errors,
    read_parquet_checked,
)
from data_platform.tiers.manifest import CHECKPOINT_NAME, Manifest, read_manifest

log = logging.getLogger(__name__)

CHECKPOINT_SEQUENCE = "previous-sequence"  # object metadata: manifest sequence it was built from


@dataclass
class ReadStats:
    """The objects a read opened (manifests, checkpoint, data files) and the bytes it fetched."""

    objects: list[str] = field(default_factory=list)
    bytes: int = 0

    def fetch(self, store: ObjectStore, key: str) -> tuple[bytes, dict[str, str]]:
        with store.open(key) as stream:
            data = stream.read()
            metadata = dict(stream.info.metadata)
        self.objects.append(key)
        self.bytes += len(data)
        return data, metadata

    def manifest(
        self, store: ObjectStore, config: ProviderConfig, month: str, env: str
    ) -> Manifest:
        manifest = read_manifest(store, month_warm_prefix(config, month, env), config.name, month)
        self.objects.append(month_warm_prefix(config, month, env) + "manifest.json")
        return manifest


@dataclass(frozen=True)
class Source:
    key: str
    min_time: datetime
    max_time: datetime


def read_state(
    provider: str, at: datetime, *, store: ObjectStore, environment: str = "production"
) -> pl.DataFrame:
    """The latest row per primary key with Time ≤ `at`; keys whose latest change is Ceased are
    left out. Columns: pk, values, Time (when the row last changed)."""
    return read_state_with_stats(provider, at, store=store, environment=environment)[0]


def read_state_with_stats(
    provider: str, at: datetime, *, store: ObjectStore, environment: str = "production"
) -> tuple[pl.DataFrame, ReadStats]:
    config = get_config(provider)
    at = require_aware(at, "at")
    stats = ReadStats()
    month = month_of(at)
    base = month_start_state(store, config, month, environment, stats)
    manifest = stats.manifest(store, config, month, environment)
    changes = _read_sources(
        store, config, month_sources(store, config, manifest, environment), None, at, stats
    )
    return live_rows(_as_changes(base, config), changes, config), stats


def read_changes(
    provider: str,
    start: datetime,
    end: datetime,
    *,
    store: ObjectStore,
    environment: str = "production",
) -> pl.DataFrame:
    """Every change row with start ≤ Time < end, in time order (then primary key order)."""
    config = get_config(provider)
    start, end = require_aware(start, "start"), require_aware(end, "end")
    if end < start:
        raise TiersError(f"end {end.isoformat()} is before start {start.isoformat()}")
    stats = ReadStats()
    frames = [empty_frame(config)]
    month = month_of(start)
    while start < end and parse_month(month) < end:
        manifest = stats.manifest(store, config, month, environment)
        sources = month_sources(store, config, manifest, environment)
        frames.append(_read_sources(store, config, sources, start, end, stats, end_inclusive=False))
        month = next_month(month)
    return pl.concat(frames).sort([TIME, *config.pk_columns])


def live_rows(base: pl.DataFrame, changes: pl.DataFrame, config: ProviderConfig) -> pl.DataFrame:
    """Live rows after applying `changes` on top of `base` (both in change-row schema)."""
    latest = latest_per_key(pl.concat([base, changes]), config)
    return latest.filter(~pl.col(CEASED)).drop(CEASED)


def _as_changes(state: pl.DataFrame, config: ProviderConfig) -> pl.DataFrame:
    return state.with_columns(pl.lit(False).alias(CEASED)).select(config.canonical_columns)


def month_sources(
    store: ObjectStore, config: ProviderConfig, manifest: Manifest, environment: str
) -> list[Source]:
    """The month's live warm files plus the hot files written after its last compacted slot."""
    sources = [Source(e.key, e.min_dt, e.max_dt) for e in manifest.live_files()]
    start_after = None
    if manifest.last_slot is not None:
        start_after = hot_key(config, datetime.fromisoformat(manifest.last_slot), environment)
    prefix = month_hot_prefix(config, manifest.month, environment)
    for info in store.list(prefix, start_after=start_after):
        if info.key.endswith(".parquet"):
            slot = slot_of_hot_key(info.key)
            sources.append(Source(info.key, slot, slot))
    return sources


def month_start_state(
    store: ObjectStore, config: ProviderConfig, month: str, environment: str, stats: ReadStats
) -> pl.DataFrame:
    """Live rows (pk, values, Time) at the first instant of `month`: the latest checkpoint at or
    before it that was built from its previous month's current manifest, plus every month's
    changes since (walking back month by month, not recursing: years may lie in between)."""
    replay: list[tuple[str, Manifest]] = []  # months whose changes still apply, newest first
    first: str | None = None
    last: str | None = None
    while True:
        previous = previous_month(month)
        checkpoint_key = month_warm_prefix(config, month, environment) + CHECKPOINT_NAME
        try:
            data, metadata = stats.fetch(store, checkpoint_key)
        except ObjectNotFound:
            data, metadata = None, {}
        earlier = stats.manifest(store, config, previous, environment)
        if data is not None and metadata.get(CHECKPOINT_SEQUENCE) == str(earlier.sequence):
            state = read_parquet_checked(data, checkpoint_key, _state_schema(config))
            break
        if data is not None:
            log.warning("checkpoint %s is stale; rebuilding the state in memory", checkpoint_key)
        first = first or earliest_month(store, config, environment)
        if first is None or month <= first:
            state = empty_frame(config).drop(CEASED)
            break
        if last is None or previous < last:
            last = latest_hot_month(store, config, environment, previous, first)
        if previous > last:  # no hot files, so no changes, after `last`: skip to it
            month = next_month(last)
            continue
        replay.append((previous, earlier))
        month = previous
    for _, manifest in reversed(replay):
        sources = month_sources(store, config, manifest, environment)
        changes = _read_sources(store, config, sources, None, None, stats)
        state = live_rows(_as_changes(state, config), changes, config)
    return state


def month_end_state(
    store: ObjectStore,
    config: ProviderConfig,
    month: str,
    environment: str,
    stats: ReadStats,
    manifest: Manifest | None = None,
) -> pl.DataFrame:
    """Live rows after every change of `month`: what the next month's checkpoint holds."""
    base = month_start_state(store, config, month, environment, stats)
    if manifest is None:
        manifest = stats.manifest(store, config, month, environment)
    sources = month_sources(store, config, manifest, environment)
    changes = _read_sources(store, config, sources, None, None, stats)
    return live_rows(_as_changes(base, config), changes, config)


def earliest_month(store: ObjectStore, config: ProviderConfig, environment: str) -> str | None:
    for info in store.list(config.hot_prefix(environment) + "/"):
        return month_of(slot_of_hot_key(info.key))
    return None


def latest_hot_month(
    store: ObjectStore, config: ProviderConfig, environment: str, month: str, first: str
) -> str:
    """The latest month from `first` (which holds a hot file) to `month` that holds one: one LIST
    per year back from `month`, then one per month of the year that holds any."""
    prefix = config.hot_prefix(environment)
    for year in range(int(month[:4]), int(first[:4]) - 1, -1):
        if not _holds_any(store, f"{prefix}/{year:04d}/"):
            continue
        top = int(month[5:]) if year == int(month[:4]) else 12
        bottom = int(first[5:]) if year == int(first[:4]) else 1
        for index in range(top, bottom - 1, -1):
            candidate = f"{year:04d}-{index:02d}"
            if _holds_any(store, month_hot_prefix(config, candidate, environment)):
                return candidate
    return first


def _holds_any(store: ObjectStore, prefix: str) -> bool:
    return next(iter(store.list(prefix)), None) is not None


def _state_schema(config: ProviderConfig) -> dict[str, pl.DataType]:
    return {c: t for c, t in config.schema_dtypes.items() if c != CEASED}


def _read_sources(
    store: ObjectStore,
    config: ProviderConfig,
    sources: list[Source],
    start: datetime | None,
    end: datetime | None,
    stats: ReadStats,
    *,
    end_inclusive: bool = True,
) -> pl.DataFrame:
    frames = [empty_frame(config)]
    for source in sources:
        if end is not None and (
            source.min_time > end or (source.min_time == end and not end_inclusive)
        ):
            continue
        data, _ = stats.fetch(store, source.key)
        check_parquet_schema(data, source.key, config.schema_dtypes)
        scan = pl.scan_parquet(io.BytesIO(data))
        if end is not None:
            scan = scan.filter(pl.col(TIME) <= end if end_inclusive else pl.col(TIME) < end)
        if start is not None:
            scan = scan.filter(pl.col(TIME) >= start)
        with parquet_errors(source.key):
            frames.append(scan.select(config.canonical_columns).collect())
    return pl.concat(frames)
