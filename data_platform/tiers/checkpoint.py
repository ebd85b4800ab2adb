"""Monthly state checkpoints: the full live state at the first instant of a month.

Written by a month's first compaction or `tiers checkpoint`; the object's metadata records the
previous month's manifest sequence it was built from, so a reader can tell a stale one. A
compaction that changes a month rebuilds the checkpoints after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_platform.core.objectstore import ObjectStore
from data_platform.tiers.config import (
    ProviderConfig,
    get_config,
    month_warm_prefix,
    next_month,
    previous_month,
    require_month,
)
from data_platform.tiers.frames import to_parquet
from data_platform.tiers.manifest import CHECKPOINT_NAME
from data_platform.tiers.reader import CHECKPOINT_SEQUENCE, ReadStats, month_end_state


@dataclass(frozen=True)
class CheckpointResult:
    key: str
    month: str
    rows: int
    bytes: int
    previous_sequence: int


def write_checkpoint(
    provider: str, month: str, *, store: ObjectStore, environment: str = "production"
) -> CheckpointResult:
    """Build `month`'s checkpoint from the previous month and store it (replacing an old one)."""
    config = get_config(provider)
    month = require_month(month)
    previous = previous_month(month)
    stats = ReadStats()
    manifest = stats.manifest(store, config, previous, environment)
    state = month_end_state(store, config, previous, environment, stats, manifest)
    key = month_warm_prefix(config, month, environment) + CHECKPOINT_NAME
    data = to_parquet(state)
    store.put(key, data, metadata={CHECKPOINT_SEQUENCE: str(manifest.sequence)})
    return CheckpointResult(key, month, state.height, len(data), manifest.sequence)


def refresh_later_checkpoints(
    config: ProviderConfig, month: str, store: ObjectStore, environment: str
) -> list[CheckpointResult]:
    """Rebuild every existing checkpoint after `month`, in order (each builds on the one before)."""
    rebuilt = []
    later = next_month(month)
    while store.exists(month_warm_prefix(config, later, environment) + CHECKPOINT_NAME):
        rebuilt.append(write_checkpoint(config.name, later, store=store, environment=environment))
        later = next_month(later)
    return rebuilt
