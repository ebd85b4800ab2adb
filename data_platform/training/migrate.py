"""Local folder -> S3 prefix through the S3 sync engine (identical files are skipped).

s3sync copies bytes, not the local sidecar's metadata, so the migrated files carry no
`sample-count`. Instead of reading them back from S3 later, the migration fills the shared stats
cache from the local copies (same etag = same bytes), so the next `stats` reads no body either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_platform.core.objectstore import ObjectInfo, ObjectNotFound
from data_platform.s3sync import SyncOptions, SyncReport, upload_directory
from data_platform.training.backends import LocalStorageBackend, S3StorageBackend
from data_platform.training.errors import TrainingError
from data_platform.training.layout import TASK_PATTERN
from data_platform.training.stats import (
    COUNT_METADATA,
    count_from_store,
    file_counts,
    sample_files,
)


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or not url[len("s3://") :].split("/", 1)[0]:
        raise TrainingError(f"{url!r} is not an S3 URL; use s3://bucket/training/")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    return bucket, prefix


def migrate(
    client: Any, local_dir: Path, to_url: str, options: SyncOptions | None = None
) -> list[SyncReport]:
    """Upload every task folder of `local_dir` (the store's own `.objectstore` is not a task)."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise TrainingError(f"{local_dir} is not a folder; pass the local sample folder")
    bucket, prefix = parse_s3_url(to_url)
    target = S3StorageBackend(bucket, prefix, client=client)
    tasks = sorted(p.name for p in local_dir.iterdir() if p.is_dir() and TASK_PATTERN.match(p.name))
    reports = [
        upload_directory(client, local_dir / task, bucket, f"{target.prefix}{task}", options)
        for task in tasks
    ]
    if not (options and options.dry_run):
        remember_counts(LocalStorageBackend(local_dir), target)
    return reports


def remember_counts(source: LocalStorageBackend, target: S3StorageBackend) -> None:
    """Put the sample counts of the migrated files into the target's stats cache."""

    def count(info: ObjectInfo) -> tuple[str, int]:
        try:
            local = source.store.head(info.key)
        except ObjectNotFound:
            local = None
        if local is None or local.etag != info.etag:  # not (exactly) from here: ask S3
            return count_from_store(target.store, info)
        stored = local.metadata.get(COUNT_METADATA)
        if stored is not None and stored.isdigit():
            return info.etag, int(stored)
        return info.etag, len(source.read_sample(info.key)["samples"])

    file_counts(target.store, sample_files(target.store, None), "", counter=count)
