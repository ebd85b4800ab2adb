"""Manifest consistency: every hot file of a month represented exactly once, nothing missing."""

from __future__ import annotations

from dataclasses import dataclass, field

from data_platform.core.objectstore import ObjectStore
from data_platform.tiers.config import (
    get_config,
    month_hot_prefix,
    month_warm_prefix,
    require_month,
    slot_of_hot_key,
)
from data_platform.tiers.manifest import Manifest, read_manifest


@dataclass
class MonthReport:
    manifest: Manifest
    hot_files: int = 0
    pending: list[str] = field(default_factory=list)  # hot files not compacted yet
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_month(
    provider: str, month: str, *, store: ObjectStore, environment: str = "production"
) -> MonthReport:
    """Check that the live files' ordinal ranges tile 0..N-1 once, N = compacted hot files, and
    that every hot file of the month is either compacted or pending (after the last slot)."""
    config = get_config(provider)
    month = require_month(month)
    manifest = read_manifest(store, month_warm_prefix(config, month, environment), provider, month)
    report = MonthReport(manifest)
    hot_keys = [
        info.key
        for info in store.list(month_hot_prefix(config, month, environment))
        if info.key.endswith(".parquet")
    ]
    report.hot_files = len(hot_keys)
    for key in hot_keys:
        if not manifest.is_processed(slot_of_hot_key(key)):
            late = manifest.last_slot and slot_of_hot_key(key).isoformat() < manifest.last_slot
            (report.problems if late else report.pending).append(
                f"{key} is older than the last compacted slot but not compacted" if late else key
            )
    covered = sorted((e.first, e.last, e.key) for e in manifest.live_files())
    expected = 0
    for first, last, key in covered:
        if first != expected:
            report.problems.append(f"{key} covers ordinals {first}-{last}, expected {expected}-")
        expected = max(expected, last + 1)
    if expected != manifest.processed_count:
        report.problems.append(
            f"live files cover {expected} hot files, the manifest lists {manifest.processed_count}"
        )
    if len(hot_keys) - len(report.pending) < manifest.processed_count:
        report.problems.append("the manifest lists hot files that no longer exist")
    for entry in manifest.live_files():
        if not store.exists(entry.key):
            report.problems.append(f"{entry.key} is referenced but missing")
    return report
