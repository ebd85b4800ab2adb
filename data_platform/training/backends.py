"""The seed's storage backends: one sample store over `core.objectstore`, local or S3.

Files are written once and never overwritten: `put_if_absent` is If-None-Match on S3 and an
exclusive create under the local store's lock. PII is masked (or, strict, refused) before anything
is written. The sample count travels with the file as `sample-count` metadata, so stats never read
bodies (see stats.py).
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from data_platform.core.objectstore import ObjectInfo, ObjectStore, PreconditionFailed
from data_platform.training import pii
from data_platform.training.bucket import check_bucket_name
from data_platform.training.errors import PiiError, TrainingError
from data_platform.training.layout import (
    check_task,
    in_range,
    parse_range,
    parse_sample_key,
    sample_key,
)
from data_platform.training.samples import (
    check_samples,
    encode_lines,
    new_id,
    parse_lines,
    stored_record,
)
from data_platform.training.stats import COUNT_METADATA, file_counts, sample_files, summarize

log = logging.getLogger(__name__)

DEFAULT_LOCAL_DIR = "data/training"
DEFAULT_PREFIX = "training/"
_TRUE = {"1", "true", "yes", "on"}


class SampleStore(ABC):
    """Shared behaviour; subclasses say how a key becomes a path or URI and back."""

    def __init__(self, store: ObjectStore, *, strict: bool = False, enabled: bool = True) -> None:
        self.store = store
        self.strict = strict
        self.enabled = enabled

    @abstractmethod
    def location(self, key: str) -> str: ...

    @abstractmethod
    def key_of(self, path_or_uri: str) -> str: ...

    def write_training_sample(
        self,
        task_type: str,
        sample: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        created_at: datetime | None = None,
    ) -> str:
        """Store one sample in its own file; return its path or URI ("" when collection is off)."""
        return self.write_training_samples(task_type, [sample], metadata, created_at=created_at)

    def write_training_samples(
        self,
        task_type: str,
        samples: Sequence[Mapping[str, Any]],
        metadata: Mapping[str, Any] | None = None,
        *,
        created_at: datetime | None = None,
    ) -> str:
        """Store many samples in one new file; return its path or URI ("" if collection is off).
        `created_at` (default now) is for imports of older samples; it picks the day folder."""
        check_task(task_type)
        check_samples(samples)
        if not self.enabled:
            log.debug("training collection is off: %d samples not written", len(samples))
            return ""
        created_at = (created_at or datetime.now(UTC)).astimezone(UTC)
        single_id = new_id() if len(samples) == 1 else None
        records = [
            stored_record(sample, task_type, created_at, metadata, single_id) for sample in samples
        ]
        records, masked = self._scrub(records)
        file_metadata = {COUNT_METADATA: str(len(records)), "task": task_type}
        file_metadata.update({f"pii-{kind.lower()}": str(n) for kind, n in sorted(masked.items())})
        key = sample_key(task_type, created_at, single_id or new_id())
        try:
            self.store.put_if_absent(key, encode_lines(records), file_metadata)
        except PreconditionFailed:
            raise TrainingError(
                f"{self.location(key)} already exists; nothing was written"
            ) from None
        return self.location(key)

    def read_sample(self, path_or_uri: str) -> dict[str, Any]:
        """{"samples": [...], "count": n, "metadata": the file's metadata}."""
        key = self.key_of(path_or_uri)
        with self.store.open(key) as stream:
            info: ObjectInfo = stream.info
            data = stream.read()
        samples = [record for _, record in parse_lines(data, self.location(key))]
        return {"samples": samples, "count": len(samples), "metadata": dict(info.metadata)}

    def list_samples(
        self, task_type: str, since: str | date | None = None, until: str | date | None = None
    ) -> list[str]:
        """Paths or URIs of the task's files whose day folder is within [since, until]."""
        return [self.location(info.key) for info in self.sample_infos(task_type, since, until)]

    def sample_infos(
        self, task_type: str, since: str | date | None = None, until: str | date | None = None
    ) -> list[ObjectInfo]:
        check_task(task_type)
        first, last = parse_range(since, until)
        # Keys sort by day, so the listing starts at `since` and stops after `until`.
        start = f"{task_type}/{first:%Y/%m/%d}/" if first else None
        found = []
        for info in self.store.list(f"{task_type}/", start_after=start):
            parsed = parse_sample_key(info.key)
            if parsed is None:
                continue
            if last is not None and parsed.day > last:
                break
            if in_range(parsed.day, first, last):
                found.append(info)
        return found

    def get_dataset_stats(
        self,
        task_type: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Files, samples and bytes per task (and in total), without reading sample bodies."""
        if task_type is not None:
            check_task(task_type)
        files = sample_files(self.store, task_type)
        prefix = f"{task_type}/" if task_type else ""
        counts = file_counts(self.store, files, prefix, on_progress=on_progress)
        return summarize(files, counts)

    def _scrub(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Counter[str]]:
        if self.strict:
            findings = [
                (finding.path.replace("$", f"$[{i}]", 1) if len(records) > 1 else finding.path,
                 finding.kind)
                for i, record in enumerate(records)
                for finding in pii.scan(record)
            ]  # fmt: skip
            if findings:
                raise PiiError(findings)
            return records, Counter()
        masked, counts = pii.mask(records)
        return masked, counts


class LocalStorageBackend(SampleStore):
    """Samples under a local folder: `<root>/<task>/YYYY/MM/DD/<id>.jsonl`."""

    def __init__(
        self, root: str | Path = DEFAULT_LOCAL_DIR, *, strict: bool = False, enabled: bool = True
    ) -> None:
        from data_platform.core.objectstore_local import LocalObjectStore

        self.root = Path(root).expanduser().absolute()
        super().__init__(LocalObjectStore(self.root), strict=strict, enabled=enabled)

    def __repr__(self) -> str:
        return f"LocalStorageBackend({str(self.root)!r})"

    def location(self, key: str) -> str:
        return str(self.root.joinpath(*key.split("/")))

    def key_of(self, path_or_uri: str) -> str:
        path = Path(path_or_uri).expanduser()
        if not path.is_absolute() and not path.exists():
            return path.as_posix()  # a key relative to the root
        try:
            return path.absolute().relative_to(self.root).as_posix()
        except ValueError:
            raise TrainingError(
                f"{path_or_uri} is not inside the sample folder {self.root}"
            ) from None


class S3StorageBackend(SampleStore):
    """Samples under `s3://<bucket_name>/<prefix>`; the client comes from core.aws if not given."""

    def __init__(
        self,
        bucket_name: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        client: Any | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        strict: bool = False,
        enabled: bool = True,
    ) -> None:
        from data_platform.core.objectstore_s3 import S3ObjectStore

        if client is None:
            client = default_s3_connection(region=region, endpoint_url=endpoint_url)
        self.bucket_name = bucket_name
        store = S3ObjectStore(client, bucket_name, prefix)
        self.prefix = store.prefix
        super().__init__(store, strict=strict, enabled=enabled)

    def __repr__(self) -> str:
        return f"S3StorageBackend('s3://{self.bucket_name}/{self.prefix}')"

    def location(self, key: str) -> str:
        return f"s3://{self.bucket_name}/{self.prefix}{key}"

    def key_of(self, path_or_uri: str) -> str:
        if not path_or_uri.startswith("s3://"):
            return path_or_uri.lstrip("/")
        bucket, _, full_key = path_or_uri[len("s3://") :].partition("/")
        if bucket != self.bucket_name or not full_key.startswith(self.prefix):
            raise TrainingError(
                f"{path_or_uri} is outside this store (s3://{self.bucket_name}/{self.prefix})"
            )
        return full_key[len(self.prefix) :]


def default_s3_connection(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """An S3 connection from the standard AWS settings (and the platform's login cache); boto3
    only where the credentials need it."""
    from data_platform.core.aws import AwsSettings, s3_connection

    settings = AwsSettings(
        region=region or os.environ.get("AWS_REGION") or None,
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
    )
    return s3_connection(settings)


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or not value.strip() else value.strip().lower() in _TRUE


def backend_from_env(
    *,
    backend: str | None = None,
    local_dir: str | Path | None = None,
    bucket: str | None = None,
    prefix: str | None = None,
    client_factory: Callable[[], Any] | None = None,
) -> SampleStore:
    """The backend the seed's variables describe, read now (never at import); arguments win
    over the variables (a bucket alone means S3, a folder alone local)."""
    kind = backend or ("s3" if bucket else "local" if local_dir else None)
    kind = kind or os.environ.get("TRAINING_STORAGE_BACKEND", "").strip().lower() or "local"
    strict = env_flag("TRAINING_PII_STRICT", False)
    enabled = env_flag("ENABLE_TRAINING_COLLECTION", True)
    if kind == "local":
        root = local_dir or os.environ.get("TRAINING_LOCAL_DIR") or DEFAULT_LOCAL_DIR
        return LocalStorageBackend(root, strict=strict, enabled=enabled)
    if kind != "s3":
        raise TrainingError(f"TRAINING_STORAGE_BACKEND={kind!r} is not 'local' or 's3'")
    bucket = bucket or os.environ.get("AWS_S3_BUCKET")
    if not bucket:
        raise TrainingError("the S3 backend needs a bucket: set AWS_S3_BUCKET or pass --bucket")
    check_bucket_name(bucket)
    if prefix is None:
        prefix = os.environ.get("TRAINING_S3_PREFIX", DEFAULT_PREFIX)
    return S3StorageBackend(
        bucket,
        prefix,
        client=client_factory() if client_factory else None,
        region=os.environ.get("AWS_REGION") or None,
        strict=strict,
        enabled=enabled,
    )
