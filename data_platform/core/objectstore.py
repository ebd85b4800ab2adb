"""Object stores: one small protocol with an S3 and a local-folder implementation.

Every domain reads and writes objects through `ObjectStore`, so the same engine runs against a
folder on a laptop and a bucket in production. Etags are returned without quotes. Conditional
writes (`put_if_absent`, `put_if_match`) raise the one `PreconditionFailed` type in both.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from data_platform.core.objectstore_local import LocalObjectStore
    from data_platform.core.objectstore_s3 import S3ObjectStore

_COPY_CHUNK = 1024 * 1024
# HTTP header token characters: S3 user-metadata names travel as `x-amz-meta-<name>` headers.
_METADATA_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class ObjectStoreError(Exception):
    """An object store operation failed; the message names the store, the key and what to do."""


class ObjectNotFound(ObjectStoreError):
    """The key does not exist in the store."""


class PreconditionFailed(ObjectStoreError):
    """A conditional write lost: the key exists (If-None-Match) or its etag changed (If-Match)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    metadata: Mapping[str, str] = field(default_factory=dict)


class ObjectReader(io.BufferedReader):
    """A streaming read of one object, with the `ObjectInfo` of exactly the version being read."""

    def __init__(self, raw: io.RawIOBase, info: ObjectInfo) -> None:
        super().__init__(raw, buffer_size=_COPY_CHUNK)
        self.info = info


@runtime_checkable
class ObjectStore(Protocol):
    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO: ...

    def download(self, key: str, path: Path) -> ObjectInfo: ...

    def put(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str: ...

    def head(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def put_if_absent(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str: ...

    def put_if_match(
        self,
        key: str,
        data: bytes | BinaryIO,
        etag: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str: ...


def normalize_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Lowercase metadata names (as S3 does) and reject names S3 cannot carry."""
    normalized: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not isinstance(name, str) or not _METADATA_NAME.match(name):
            raise ValueError(
                f"metadata name {name!r} is not allowed: use ASCII letters, digits and '-_.'"
            )
        if not isinstance(value, str):
            raise ValueError(f"metadata value for {name!r} must be str, not {type(value).__name__}")
        normalized[name.lower()] = value
    return normalized


def strip_etag(etag: str) -> str:
    return etag.strip('"')


def download_to_path(store: ObjectStore, key: str, path: Path) -> ObjectInfo:
    """Stream `key` to a temp file next to `path`, fsync, then rename: never a truncated file."""
    from data_platform.core.files import atomic_file, regular_file_mode

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_file(path, suffix=".part", mode=regular_file_mode()) as out,
        store.open(key) as stream,
    ):
        info = getattr(stream, "info", None)
        while chunk := stream.read(_COPY_CHUNK):
            out.write(chunk)
        if info is None:
            info = store.head(key)
    return info


def object_store_from_url(url: str, client_factory: Callable[[], Any] | None = None) -> ObjectStore:
    """`s3://bucket/prefix` (needs `client_factory` returning a `core.aws.S3Connection` or a
    boto3 S3 client), `file:///path`, or a plain filesystem path."""
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if not parsed.netloc:
            raise ValueError(f"{url!r} names no bucket; expected s3://bucket/prefix")
        if client_factory is None:
            raise ValueError(
                f"{url!r} needs an S3 connection: pass client_factory "
                "(e.g. data_platform.core.aws.s3_connection)"
            )
        from data_platform.core.objectstore_s3 import S3ObjectStore

        return S3ObjectStore(client_factory(), parsed.netloc, parsed.path.lstrip("/"))
    if url.startswith("file:"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{url!r}: file URLs must be local, e.g. file:///data/store")
        from data_platform.core.objectstore_local import LocalObjectStore

        return LocalObjectStore(unquote(parsed.path))
    if "://" in url:
        raise ValueError(f"unsupported object store URL {url!r}: use s3://, file:// or a path")
    from data_platform.core.objectstore_local import LocalObjectStore

    return LocalObjectStore(url)


def __getattr__(name: str) -> Any:
    # The implementations import this module, so they are re-exported lazily (PEP 562): every
    # public name imports from here, whichever module is imported first.
    if name == "LocalObjectStore":
        from data_platform.core.objectstore_local import LocalObjectStore

        return LocalObjectStore
    if name == "S3ObjectStore":
        from data_platform.core.objectstore_s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectStore",
    "ObjectStoreError",
    "PreconditionFailed",
    "S3ObjectStore",
    "download_to_path",
    "object_store_from_url",
]
