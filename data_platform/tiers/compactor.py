"""Leveled m-way compaction under a conditional-write manifest, with no lock service.

Hot files enter level 0 in slot order; every 8 files of level k merge into one level k+1 file.
An attempt writes its merged files, then replaces the manifest with If-Match. When another version
took its place it re-reads the manifest and, as Iceberg validates a rewrite, retries only if every
file it merged is still live there; otherwise it raises ConcurrencyConflictError. Files of an
attempt that failed before committing or that certainly lost are deleted; when the commit's outcome
is unknown nothing is deleted, and a crash leaves files nobody references; vacuum collects both.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import polars as pl

from data_platform.core.objectstore import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
)
from data_platform.tiers.checkpoint import refresh_later_checkpoints, write_checkpoint
from data_platform.tiers.config import (
    TIME,
    ProviderConfig,
    TiersError,
    get_config,
    hot_key,
    month_hot_prefix,
    month_of,
    month_warm_prefix,
    require_aware,
    require_month,
    slot_of_hot_key,
)
from data_platform.tiers.frames import check_parquet_schema, from_parquet, to_parquet
from data_platform.tiers.manifest import (
    FANOUT,
    CommitLost,
    FileEntry,
    Manifest,
    commit_manifest,
    delete_unreferenced,
    read_manifest,
)

log = logging.getLogger(__name__)


class ConcurrencyConflictError(RuntimeError):
    """Another process changed the manifest in a way this attempt cannot be replayed on; retry."""


@dataclass
class CompactionResult:
    provider: str
    month: str
    compacted_keys: list[str] = field(default_factory=list)
    sequence: int = 0
    files_added: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    bytes_written: int = 0
    level_sizes: list[int] = field(default_factory=list)
    attempts: int = 0
    seconds: float = 0.0
    checkpoints: list[str] = field(default_factory=list)

    @property
    def noop(self) -> bool:
        return not self.compacted_keys


@dataclass
class _Plan:
    manifest: Manifest
    merged_inputs: set[str] = field(default_factory=set)
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bytes_written: int = 0


def run_compaction(
    hot_key_: str,
    timestamp: datetime,
    provider: str = "aws",
    *,
    store: ObjectStore,
    environment: str = "production",
    timeout_seconds: float = 30.0,
) -> CompactionResult:
    """Compact one hot file into its month's warm tier; a no-op if it is already there."""
    config = get_config(provider)
    slot = require_aware(timestamp)
    expected = hot_key(config, slot, environment)
    if hot_key_ != expected:
        raise TiersError(
            f"hot key {hot_key_!r} does not belong to {slot.isoformat()}: expected {expected!r}"
        )
    try:
        info = store.head(hot_key_)
    except ObjectNotFound:
        raise TiersError(f"hot file {hot_key_} does not exist: upload it first") from None
    return _compact(config, month_of(slot), [info], store, environment, timeout_seconds)


def compact_month(
    provider: str,
    month: str,
    *,
    store: ObjectStore,
    environment: str = "production",
    timeout_seconds: float = 30.0,
) -> CompactionResult:
    """Compact every hot file of `month` not yet in its manifest, in slot order, in one commit."""
    config = get_config(provider)
    month = require_month(month)
    prefix = month_hot_prefix(config, month, environment)
    infos = [info for info in store.list(prefix) if info.key.endswith(".parquet")]
    return _compact(config, month, infos, store, environment, timeout_seconds)


def _compact(
    config: ProviderConfig,
    month: str,
    infos: list[ObjectInfo],
    store: ObjectStore,
    environment: str,
    timeout_seconds: float,
) -> CompactionResult:
    started = time.monotonic()
    prefix = month_warm_prefix(config, month, environment)
    result = CompactionResult(config.name, month)
    infos = sorted(infos, key=lambda info: info.key)
    checked: set[str] = set()
    while True:
        result.attempts += 1
        base = read_manifest(store, prefix, config.name, month)
        todo = [i for i in infos if not base.is_processed(slot_of_hot_key(i.key))]
        if not todo:
            return _finish(result, base, started)
        for info in todo:  # a file that is not a change file never enters the manifest
            if info.key not in checked:
                check_parquet_schema(_get(store, info.key), info.key, config.schema_dtypes)
                checked.add(info.key)
        attempt = uuid.uuid4().hex[:8]
        plan = _Plan(base)
        try:
            _plan(plan, store, config, prefix, todo, attempt)
        except BaseException:
            delete_unreferenced(store, plan.written)  # no commit tried: nobody names them
            raise
        try:
            committed = commit_manifest(store, prefix, base, plan.manifest, attempt)
        except CommitLost:
            current = read_manifest(store, prefix, config.name, month)
            # Only a committed version names a merged file, and this attempt's never was; the
            # check keeps that true whatever a store's retries did underneath.
            live = {entry.key for entry in current.live_files()}
            delete_unreferenced(store, [key for key in plan.written if key not in live])
            if all(current.is_processed(slot_of_hot_key(i.key)) for i in todo):
                return _finish(result, current, started)  # another process did our work
            lost = sorted(plan.merged_inputs - live)
            if lost:
                raise ConcurrencyConflictError(
                    f"{prefix}manifest.json: {len(lost)} file(s) this attempt merged were "
                    f"compacted by another process (e.g. {lost[0]}); retry the compaction"
                ) from None
            if time.monotonic() - started > timeout_seconds:
                raise ConcurrencyConflictError(
                    f"{prefix}manifest.json kept changing for {timeout_seconds:.0f} s "
                    f"({result.attempts} attempts); retry later"
                ) from None
            time.sleep(random.uniform(0, min(0.02 * 2**result.attempts, 1.0)))
            continue
        break
    result.compacted_keys = [i.key for i in todo]
    result.files_added = plan.written
    result.files_removed = plan.removed
    result.bytes_written = plan.bytes_written
    if committed.sequence == 1:
        result.checkpoints.append(
            write_checkpoint(config.name, month, store=store, environment=environment).key
        )
    result.checkpoints += [
        c.key for c in refresh_later_checkpoints(config, month, store, environment)
    ]
    return _finish(result, committed, started, timeout_seconds)


def _finish(
    result: CompactionResult, manifest: Manifest, started: float, timeout: float | None = None
) -> CompactionResult:
    result.sequence = manifest.sequence
    result.level_sizes = [len(level) for level in manifest.levels]
    result.seconds = time.monotonic() - started
    if timeout is not None and result.seconds > timeout:
        log.warning(
            "compaction of %s took %.1f s (> %.0f s)", result.month, result.seconds, timeout
        )
    return result


def _plan(
    plan: _Plan,
    store: ObjectStore,
    config: ProviderConfig,
    prefix: str,
    todo: list[ObjectInfo],
    attempt: str,
) -> None:
    """Append `todo` to level 0 of plan.manifest, then merge full levels upwards."""
    manifest = plan.manifest
    levels = [list(level) for level in manifest.levels] or [[]]
    ordinal = manifest.processed_count
    for info in todo:
        slot = slot_of_hot_key(info.key).isoformat()
        levels[0].append(FileEntry(info.key, 0, ordinal, ordinal, info.size, slot, slot))
        manifest = manifest.with_processed(slot_of_hot_key(info.key))
        ordinal += 1
    created: set[str] = set()
    new_keys = {info.key for info in todo}
    level = 0
    while level < len(levels):
        while len(levels[level]) >= FANOUT:
            inputs, levels[level] = levels[level][:FANOUT], levels[level][FANOUT:]
            entry = _merge(plan, store, config, prefix, inputs, manifest.sequence + 1, attempt)
            plan.merged_inputs |= {i.key for i in inputs} - created - new_keys
            plan.removed += [i.key for i in inputs]
            created.add(entry.key)
            if level + 1 == len(levels):
                levels.append([])
            levels[level + 1].append(entry)
        level += 1
    plan.manifest = replace(manifest, levels=tuple(tuple(level) for level in levels))


def _merge(
    plan: _Plan,
    store: ObjectStore,
    config: ProviderConfig,
    prefix: str,
    inputs: list[FileEntry],
    sequence: int,
    attempt: str,
) -> FileEntry:
    frames = [from_parquet(_get(store, entry.key), config, entry.key) for entry in inputs]
    merged = pl.concat(frames).sort([TIME, *config.pk_columns])
    level, first, last = inputs[0].level + 1, inputs[0].first, inputs[-1].last
    key = f"{prefix}L{level}_{sequence:04d}_{first:05d}-{last:05d}_{attempt}.parquet"
    data = to_parquet(merged)
    plan.written.append(key)  # before the write: a failed put may still have landed
    store.put_if_absent(key, data)
    plan.bytes_written += len(data)
    times = merged[TIME]
    return FileEntry(
        key,
        level,
        first,
        last,
        len(data),
        times.min().isoformat(),
        times.max().isoformat(),
        merged.height,
    )


def _get(store: ObjectStore, key: str) -> bytes:
    try:
        return store.get(key)
    except ObjectNotFound:
        raise ObjectStoreError(
            f"{key} is listed for compaction but missing from the store; restore it or roll "
            "the manifest back to a version that does not reference it"
        ) from None
