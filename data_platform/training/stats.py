"""Dataset stats without reading sample bodies.

Each sample file carries its sample count in its metadata (`sample-count`: S3 user metadata, the
local store's sidecar). A shared cache object in the store maps key -> (etag, count), so a
repeated `stats` costs one listing, one read of the cache, and one HEAD per file not seen before.
A file without the metadata (copied in by other tools) is counted once by reading it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from data_platform.core.objectstore import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    PreconditionFailed,
)
from data_platform.training.layout import STATS_CACHE_KEY, parse_sample_key
from data_platform.training.samples import count_lines

log = logging.getLogger(__name__)

COUNT_METADATA = "sample-count"
_CACHE_VERSION = 1
_HEAD_WORKERS = 16


@dataclass
class CountCache:
    """key -> (etag, sample count), read from and written back to one object in the store."""

    entries: dict[str, tuple[str, int]] = field(default_factory=dict)
    etag: str | None = None  # of the cache object as read, for a conditional write back
    changed: bool = False

    def get(self, info: ObjectInfo) -> int | None:
        entry = self.entries.get(info.key)
        return entry[1] if entry is not None and entry[0] == info.etag else None

    def put(self, key: str, etag: str, count: int) -> None:
        if self.entries.get(key) != (etag, count):
            self.entries[key] = (etag, count)
            self.changed = True

    def retain(self, prefix: str, keys: set[str]) -> None:
        """Forget files under `prefix` that are gone (entries elsewhere are kept)."""
        stale = [k for k in self.entries if k.startswith(prefix) and k not in keys]
        for key in stale:
            del self.entries[key]
        self.changed = self.changed or bool(stale)


def load_cache(store: ObjectStore) -> CountCache:
    try:
        with store.open(STATS_CACHE_KEY) as stream:
            etag = stream.info.etag
            document = json.loads(stream.read())
        if document.get("version") != _CACHE_VERSION:
            raise ValueError(f"version {document.get('version')!r}")
        entries = {key: (etag_, int(count)) for key, (etag_, count) in document["files"].items()}
        return CountCache(entries, etag)
    except ObjectNotFound:
        return CountCache()
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # A cache is only a shortcut: rebuild it (the conditional write replaces the bad one).
        log.warning(
            "ignoring unreadable stats cache %s (%s); it will be rebuilt", STATS_CACHE_KEY, exc
        )
        try:
            return CountCache(etag=store.head(STATS_CACHE_KEY).etag, changed=True)
        except ObjectNotFound:
            return CountCache()


def save_cache(store: ObjectStore, cache: CountCache) -> None:
    """Write the cache back if it changed; losing a race to another writer is fine."""
    if not cache.changed:
        return
    document = {
        "version": _CACHE_VERSION,
        "files": {key: list(entry) for key, entry in sorted(cache.entries.items())},
    }
    data = json.dumps(document, separators=(",", ":")).encode("utf-8")
    try:
        if cache.etag is None:
            store.put_if_absent(STATS_CACHE_KEY, data)
        else:
            store.put_if_match(STATS_CACHE_KEY, data, cache.etag)
    except PreconditionFailed:
        log.info("stats cache was updated by someone else meanwhile; keeping theirs")
    except ObjectStoreError as exc:  # e.g. a read-only store: stats are still right
        log.warning("could not save the stats cache: %s", exc)


def count_from_store(store: ObjectStore, info: ObjectInfo) -> tuple[str, int]:
    """(etag, sample count) of one file: its metadata, or (no metadata) its lines."""
    head = store.head(info.key)
    count = head.metadata.get(COUNT_METADATA)
    if count is not None and count.isdigit():
        return head.etag, int(count)
    log.info("%s has no %s metadata: counting its lines once", info.key, COUNT_METADATA)
    with store.open(info.key) as stream:
        return stream.info.etag, count_lines(stream.read())


def sample_files(store: ObjectStore, task: str | None) -> list[ObjectInfo]:
    """One listing: every sample file of `task` (or of all tasks), in key order."""
    prefix = f"{task}/" if task else ""
    return [info for info in store.list(prefix) if parse_sample_key(info.key) is not None]


def file_counts(
    store: ObjectStore,
    files: list[ObjectInfo],
    prefix: str,
    counter: Callable[[ObjectInfo], tuple[str, int]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """key -> sample count for `files` (all the sample files under `prefix`), through the cache."""
    count_one = counter or (lambda info: count_from_store(store, info))
    cache = load_cache(store)
    cache.retain(prefix, {info.key for info in files})
    counts: dict[str, int] = {}
    missing: list[ObjectInfo] = []
    for info in files:
        cached = cache.get(info)
        if cached is None:
            missing.append(info)
        else:
            counts[info.key] = cached
    if missing:
        with ThreadPoolExecutor(_HEAD_WORKERS, thread_name_prefix="training-stats") as pool:
            for done, (info, (etag, count)) in enumerate(
                zip(missing, pool.map(count_one, missing), strict=True), start=1
            ):
                counts[info.key] = count
                cache.put(info.key, etag, count)
                if on_progress is not None:
                    on_progress(done, len(missing))
    save_cache(store, cache)
    return counts


def summarize(files: Iterable[ObjectInfo], counts: dict[str, int]) -> dict[str, Any]:
    """The seed's `get_dataset_stats` shape, with per-task first and last day."""
    tasks: dict[str, dict[str, Any]] = {}
    for info in files:
        parsed = parse_sample_key(info.key)
        if parsed is None:
            continue
        day = parsed.day.isoformat()
        entry = tasks.setdefault(
            parsed.task, {"files": 0, "samples": 0, "bytes": 0, "first_day": day, "last_day": day}
        )
        entry["files"] += 1
        entry["samples"] += counts.get(info.key, 0)
        entry["bytes"] += info.size
        entry["first_day"] = min(entry["first_day"], day)
        entry["last_day"] = max(entry["last_day"], day)
    return {
        "files": sum(t["files"] for t in tasks.values()),
        "samples": sum(t["samples"] for t in tasks.values()),
        "bytes": sum(t["bytes"] for t in tasks.values()),
        "tasks": dict(sorted(tasks.items())),
    }
