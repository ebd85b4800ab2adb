"""`ObjectStore` on an S3 bucket (or any S3 API server) through obstore.

obstore (Rust's object_store) carries the data plane: whole and ranged GETs, PUTs (multipart for
big streams), conditional PUTs (`mode="create"` sends If-None-Match: *, an e-tag `UpdateVersion`
sends If-Match), listing with StartAfter and DELETE. It starts in ~25 ms where boto3 takes ~0.4 s.
Where the store comes from (endpoint, region, credentials) is an `S3Connection` (core.aws).

User metadata is read with a metadata-only GET (obstore's `head()` does not return it). Values
travel as HTTP header values, which carry printable ASCII only: any other value travels RFC
2047-encoded (as S3 itself returns such values) and is decoded on read, so both stores round-trip
any text; whitespace inside a value is kept as is.
"""

from __future__ import annotations

import base64
import email.header
import io
import itertools
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from data_platform.core.aws import S3Connection
from data_platform.core.objectstore import (
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStoreError,
    PreconditionFailed,
    download_to_path,
    normalize_metadata,
    strip_etag,
)

if TYPE_CHECKING:
    from obstore.store import S3Store

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
MULTIPART_ABOVE = 64 * 1024 * 1024
_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_PRECONDITION = {"PreconditionFailed", "ConditionalRequestConflict"}
# obstore's attribute names that are not user metadata (x-amz-meta-*).
_HTTP_ATTRIBUTES = {
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Type",
    "Cache-Control",
    "Storage-Class",
}


class S3ObjectStore:
    """Keys are relative to `prefix` inside `bucket`. `connection` is an `S3Connection`, or a boto3
    S3 client whose endpoint, region and (refreshing) credentials are used."""

    def __init__(self, connection: S3Connection | Any, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise ValueError("S3ObjectStore needs a bucket name")
        if not isinstance(connection, S3Connection):
            connection = S3Connection.from_boto3_client(connection)
        self.connection = connection
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self._store: S3Store = connection.obstore(bucket)

    def __repr__(self) -> str:
        return f"S3ObjectStore('s3://{self.bucket}/{self.prefix}')"

    def get(self, key: str) -> bytes:
        full_key = self._full_key(key)
        import obstore

        with self._errors("reading", key):
            return obstore.get(self._store, full_key).bytes().to_bytes()

    def open(self, key: str) -> BinaryIO:
        full_key = self._full_key(key)
        import obstore

        with self._errors("reading", key):
            result = obstore.get(self._store, full_key)
        info = self._info(key, result.meta, result.attributes)
        return ObjectReader(_ChunksRaw(iter(result), self._url(key)), info)

    def download(self, key: str, path: Path) -> ObjectInfo:
        return download_to_path(self, key, path)

    def put(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str:
        return self._put(key, data, metadata, None)

    def put_if_absent(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str:
        return self._put(key, data, metadata, "create")

    def put_if_match(
        self,
        key: str,
        data: bytes | BinaryIO,
        etag: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        if not etag:
            raise ValueError("put_if_match needs the etag the caller last read")
        return self._put(key, data, metadata, {"e_tag": f'"{strip_etag(etag)}"'})

    def head(self, key: str) -> ObjectInfo:
        full_key = self._full_key(key)
        import obstore

        with self._errors("reading", key):
            # A metadata-only GET (a HEAD request) returns user metadata; obstore.head does not.
            result = obstore.get(self._store, full_key, options={"head": True})
        return self._info(key, result.meta, result.attributes)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        if start_after is None:
            yield from self._list(prefix, None)
            return
        # SeaweedFS takes a StartAfter that names a folder as "after that whole folder" and
        # skips the keys under it (S3 lists them: "m/x" > "m"); object_store drops a trailing
        # "/" from it, so "m/" is asked as "m". The keys under it are listed first on their own,
        # and left out of the main listing should a server send them again there.
        folder = start_after.rstrip("/") + "/"
        if prefix.startswith(folder):  # every key under the prefix comes after start_after
            yield from self._list(prefix, None)
            return
        if folder.startswith(prefix):
            yield from self._list(folder, None)
        for info in self._list(prefix, start_after):
            if not info.key.startswith(folder):
                yield info

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        import obstore

        # object_store lists whole path segments ("a" lists "a/..." only): a prefix that ends
        # inside a segment lists its folder and keeps the keys that start with it.
        full_prefix = self.prefix + prefix
        folder = full_prefix[: full_prefix.rfind("/") + 1]
        offset = None if start_after is None else self.prefix + start_after
        with self._errors("listing", prefix):
            batches = obstore.list(self._store, folder or None, offset=offset, chunk_size=1000)
            for batch in batches:
                for meta in batch:
                    full_key = meta["path"]
                    if full_key.startswith(full_prefix):
                        yield ObjectInfo(
                            key=full_key[len(self.prefix) :],
                            size=meta["size"],
                            etag=strip_etag(meta.get("e_tag") or ""),
                            last_modified=meta.get("last_modified"),
                            metadata={},
                        )

    def delete(self, key: str) -> None:
        full_key = self._full_key(key)
        import obstore

        with self._errors("deleting", key):
            obstore.delete(self._store, full_key)

    def _put(
        self,
        key: str,
        data: bytes | BinaryIO,
        metadata: Mapping[str, str] | None,
        mode: Any,
    ) -> str:
        full_key = self._full_key(key)
        import obstore

        body, big = _body(data)
        attributes = {name: _encode_value(v) for name, v in normalize_metadata(metadata).items()}
        # A conditional put on a missing key answers 404: for If-Match that is a lost race.
        with self._errors("writing", key, missing_is_precondition=isinstance(mode, dict)):
            result = obstore.put(
                self._store,
                full_key,
                body,
                attributes=attributes,
                mode=mode,
                # Conditions hold for single PUTs only; multipart for big unconditional bodies.
                use_multipart=big and mode is None,
            )
        return strip_etag(result["e_tag"] or "")

    def _full_key(self, key: str) -> str:
        if not isinstance(key, str) or not key or key.startswith("/"):
            raise ValueError(f"invalid object key {key!r}: use a non-empty relative key")
        return self.prefix + key

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _info(self, key: str, meta: Mapping[str, Any], attributes: Mapping[str, str]) -> ObjectInfo:
        last_modified: datetime | None = meta.get("last_modified")
        return ObjectInfo(
            key=key,
            size=int(meta.get("size", 0)),
            etag=strip_etag(meta.get("e_tag") or ""),
            last_modified=last_modified,
            metadata={
                name.lower(): _decode_value(value)
                for name, value in attributes.items()
                if name not in _HTTP_ATTRIBUTES
            },
        )

    @contextmanager
    def _errors(
        self, action: str, key: str, *, missing_is_precondition: bool = False
    ) -> Iterator[None]:
        """Translate obstore errors into this module's errors, naming bucket and key."""
        try:
            yield
        except Exception as exc:
            translated = self._translate(exc, action, key, missing_is_precondition)
            if translated is None:
                raise
            raise translated from exc

    def _translate(
        self, exc: Exception, action: str, key: str, missing_is_precondition: bool
    ) -> ObjectStoreError | None:
        from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError

        url = self._url(key)
        code = _s3_code(exc)
        if code == "NoSuchBucket":
            return ObjectStoreError(
                f"S3 bucket {self.bucket!r} does not exist (while {action} {url}); "
                "create the bucket or fix the store URL"
            )
        if isinstance(exc, AlreadyExistsError | PreconditionError) or code in _PRECONDITION:
            return PreconditionFailed(
                f"conditional write to {url} lost: the object changed or already exists; "
                "read it again and retry"
            )
        if isinstance(exc, FileNotFoundError):  # obstore's NotFoundError
            if missing_is_precondition:
                return PreconditionFailed(
                    f"conditional write to {url} lost: the object no longer exists"
                )
            return ObjectNotFound(f"no object {url}")
        if isinstance(exc, BaseError | OSError):
            return ObjectStoreError(
                f"S3 request failed while {action} {url}: {code or _first_line(exc)}"
            )
        return None


def _s3_code(exc: BaseException) -> str:
    """The <Code> of the S3 error body obstore quotes in its message, if any."""
    found = _CODE.search(str(exc))
    return found[1] if found else ""


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class _ChunksRaw(io.RawIOBase):
    """Raw adapter over obstore's chunk iterator so ObjectReader can buffer it."""

    def __init__(self, chunks: Iterator[Any], url: str) -> None:
        self._chunks = chunks
        self._url = url
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:
                raise ObjectStoreError(f"reading {self._url} failed mid-stream: {exc}") from exc
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _body(data: bytes | BinaryIO) -> tuple[bytes | BinaryIO | Iterator[bytes], bool]:
    """What obstore.put takes (bytes, a seekable file, or chunks of a pipe or socket), and
    whether it is big enough for a multipart upload (below, one PUT keeps the ETag an MD5)."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), len(data) > MULTIPART_ABOVE
    if isinstance(data, str) or not hasattr(data, "read"):
        raise TypeError(f"object data must be bytes or a binary file, not {type(data).__name__}")
    try:
        seekable = bool(data.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        start = data.tell()
        size = data.seek(0, io.SEEK_END) - start
        data.seek(start)
        return data, size > MULTIPART_ABOVE
    head = data.read(MULTIPART_ABOVE + 1)
    if len(head) <= MULTIPART_ABOVE:
        return head, False
    return itertools.chain([head], iter(lambda: data.read(_CHUNK), b"")), True


def _encode_value(value: str) -> str:
    # HTTP headers carry printable ASCII only; S3 answers other values RFC 2047-encoded too.
    if value.isascii() and value.isprintable() and "=?" not in value and value == value.strip():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def _decode_value(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeDecodeError):
        log.warning("leaving undecodable S3 metadata value as received")
        return value
