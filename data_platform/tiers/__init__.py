"""Hot/warm Parquet change log on an object store (seed 003): 10-minute hot files written once,
8-way leveled compaction under a conditional-write manifest, point-in-time reads."""

from data_platform.tiers.changes import detect_changes
from data_platform.tiers.compactor import (
    CompactionResult,
    ConcurrencyConflictError,
    compact_month,
    run_compaction,
)
from data_platform.tiers.config import ProviderConfig, TiersError, get_config, register_provider
from data_platform.tiers.hot import HotSlotConflictError, prepare_for_upload, upload_hot_tier
from data_platform.tiers.reader import read_changes, read_state
from data_platform.tiers.vacuum import VacuumResult, vacuum

__all__ = [
    "CompactionResult",
    "ConcurrencyConflictError",
    "HotSlotConflictError",
    "ProviderConfig",
    "TiersError",
    "VacuumResult",
    "compact_month",
    "detect_changes",
    "get_config",
    "prepare_for_upload",
    "read_changes",
    "read_state",
    "register_provider",
    "run_compaction",
    "upload_hot_tier",
    "vacuum",
]
