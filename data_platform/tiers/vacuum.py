"""Vacuum: delete warm files and manifest versions that no recent version can need.

A merged file is deleted when no manifest version committed within `retention` (nor the one
that was current when the retention window opened, nor the head) references it and the file
itself is older than `retention`, so an attempt still in flight never loses its files. Version
files older than `retention` go too, except the head's. Hot files are the source of truth and are
never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from data_platform.core.objectstore import ObjectNotFound, ObjectStore
from data_platform.tiers.config import TiersError, get_config
from data_platform.tiers.manifest import (
    MANIFEST_NAME,
    VERSIONS_FOLDER,
    read_manifest,
    read_version,
)

log = logging.getLogger(__name__)


@dataclass
class VacuumResult:
    deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept: int = 0
    months: int = 0
    dry_run: bool = False


def vacuum(
    provider: str,
    *,
    store: ObjectStore,
    environment: str = "production",
    retention: timedelta = timedelta(days=7),
    dry_run: bool = False,
) -> VacuumResult:
    config = get_config(provider)
    if retention < timedelta(0):
        raise TiersError(f"retention {retention} is negative: vacuum keeps at least 0 s of history")
    cutoff = datetime.now(UTC) - retention
    result = VacuumResult(dry_run=dry_run)
    objects = list(store.list(config.warm_prefix(environment) + "/"))
    months = sorted(
        {
            info.key.rsplit("/", 1)[0] + "/"
            for info in objects
            if info.key.endswith("/" + MANIFEST_NAME)
        }
    )
    for prefix in months:
        result.months += 1
        head = read_manifest(store, prefix, config.name, "")
        referenced = _referenced(store, head.version_key, cutoff) | {
            e.key for e in head.live_files()
        }
        for info in objects:
            if not info.key.startswith(prefix) or info.key.endswith(MANIFEST_NAME):
                continue
            name = info.key[len(prefix) :]
            young = info.last_modified is None or info.last_modified > cutoff
            if name.startswith(VERSIONS_FOLDER):
                removable = info.key != head.version_key and not young
            elif name.startswith("L") and "/" not in name:
                removable = info.key not in referenced and not young
            else:
                removable = False  # checkpoints and anything we did not write
            if not removable:
                result.kept += 1
                continue
            result.deleted.append(info.key)
            result.bytes_freed += info.size
            if not dry_run:
                store.delete(info.key)
    return result


def _referenced(store: ObjectStore, version_key: str | None, cutoff: datetime) -> set[str]:
    """Files referenced by versions committed after `cutoff` and by the one current at it."""
    keys: set[str] = set()
    while version_key:
        try:
            version = read_version(store, version_key)
        except ObjectNotFound:
            break  # retired by an earlier vacuum: older than any retention window
        keys |= {entry.key for entry in version.live_files()}
        if version.committed_at is None or datetime.fromisoformat(version.committed_at) <= cutoff:
            break
        version_key = version.previous
    return keys
