"""`ObjectStore` on an S3 bucket (or any S3 API server) through a boto3 client passed in.

Conditional writes use S3's own `If-None-Match: *` / `If-Match: <etag>` on PutObject, so they are
atomic on the server. Non-ASCII metadata values travel RFC 2047-encoded (as S3 itself returns
them) and are decoded on read, so both stores round-trip any text.
"""

from __future__ import annotations

import base64
import email.header
import io
import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

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

log = logging.getLogger(__name__)

_SPOOL_IN_MEMORY = 64 * 1024 * 1024
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


class S3ObjectStore:
    """Keys are relative to `prefix` inside `bucket`; the client is any boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise ValueError("S3ObjectStore needs a bucket name")
        self._client = client
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""

    def __repr__(self) -> str:
        return f"S3ObjectStore('s3://{self.bucket}/{self.prefix}')"

    def get(self, key: str) -> bytes:
        full_key = self._full_key(key)
        with self._errors("reading", key):
            response = self._client.get_object(Bucket=self.bucket, Key=full_key)
            with response["Body"] as body:
                return body.read()

    def open(self, key: str) -> BinaryIO:
        full_key = self._full_key(key)
        with self._errors("reading", key):
            response = self._client.get_object(Bucket=self.bucket, Key=full_key)
        info = self._info(key, response)
        return ObjectReader(_StreamingBodyRaw(response["Body"], self._url(key)), info)

    def download(self, key: str, path: Path) -> ObjectInfo:
        return download_to_path(self, key, path)

    def put(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str:
        return self._put(key, data, metadata)

    def put_if_absent(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str:
        return self._put(key, data, metadata, IfNoneMatch="*")

    def put_if_match(
        self,
        key: str,
        data: bytes | BinaryIO,
        etag: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        if not etag:
            raise ValueError("put_if_match needs the etag the caller last read")
        return self._put(key, data, metadata, IfMatch=f'"{strip_etag(etag)}"')

    def head(self, key: str) -> ObjectInfo:
        full_key = self._full_key(key)
        with self._errors("reading", key):
            response = self._client.head_object(Bucket=self.bucket, Key=full_key)
        return self._info(key, response)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        if start_after is None or start_after.endswith("/"):
            yield from self._list(prefix, start_after)
            return
        # SeaweedFS takes a StartAfter that names a folder as "after that whole folder" and
        # skips the keys under it (S3 lists them: "m/x" > "m"). They are listed first on their
        # own, and left out of the main listing should a server send them again there.
        folder = start_after + "/"
        if prefix.startswith(folder):  # every key under the prefix comes after start_after
            yield from self._list(prefix, None)
            return
        if folder.startswith(prefix):
            yield from self._list(folder, None)
        for info in self._list(prefix, start_after):
            if not info.key.startswith(folder):
                yield info

    def _list(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after is not None:
            params["StartAfter"] = self.prefix + start_after
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors("listing", prefix):
            for page in paginator.paginate(**params):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"][len(self.prefix) :],
                        size=item["Size"],
                        etag=strip_etag(item.get("ETag", "")),
                        last_modified=item.get("LastModified"),
                        metadata={},
                    )

    def delete(self, key: str) -> None:
        full_key = self._full_key(key)
        with self._errors("deleting", key):
            self._client.delete_object(Bucket=self.bucket, Key=full_key)

    def _put(
        self,
        key: str,
        data: bytes | BinaryIO,
        metadata: Mapping[str, str] | None,
        **conditions: str,
    ) -> str:
        full_key = self._full_key(key)
        encoded = {name: _encode_value(v) for name, v in normalize_metadata(metadata).items()}
        # A conditional put on a missing key answers 404: for If-Match that is a lost race.
        with (
            _seekable(data) as body,
            self._errors("writing", key, missing_is_precondition="IfMatch" in conditions),
        ):
            response = self._client.put_object(
                Bucket=self.bucket, Key=full_key, Body=body, Metadata=encoded, **conditions
            )
        return strip_etag(response["ETag"])

    def _full_key(self, key: str) -> str:
        if not isinstance(key, str) or not key or key.startswith("/"):
            raise ValueError(f"invalid object key {key!r}: use a non-empty relative key")
        return self.prefix + key

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _info(self, key: str, response: Mapping[str, Any]) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            etag=strip_etag(response.get("ETag", "")),
            last_modified=response.get("LastModified"),
            metadata={
                name.lower(): _decode_value(v) for name, v in response.get("Metadata", {}).items()
            },
        )

    @contextmanager
    def _errors(
        self, action: str, key: str, *, missing_is_precondition: bool = False
    ) -> Iterator[None]:
        """Translate botocore errors into this module's errors, naming bucket and key."""
        from botocore.exceptions import BotoCoreError, ClientError

        url = self._url(key)
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code == "NoSuchBucket":
                raise ObjectStoreError(
                    f"S3 bucket {self.bucket!r} does not exist (while {action} {url}); "
                    "create the bucket or fix the store URL"
                ) from exc
            if code in _PRECONDITION_CODES or status == "412":
                raise PreconditionFailed(
                    f"conditional write to {url} lost: the object changed or already exists; "
                    "read it again and retry"
                ) from exc
            if code in _NOT_FOUND_CODES or status == "404":
                if missing_is_precondition:
                    raise PreconditionFailed(
                        f"conditional write to {url} lost: the object no longer exists"
                    ) from exc
                raise ObjectNotFound(f"no object {url}") from exc
            raise ObjectStoreError(
                f"S3 error while {action} {url}: {code or status} {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise ObjectStoreError(f"S3 request failed while {action} {url}: {exc}") from exc


class _StreamingBodyRaw(io.RawIOBase):
    """Raw adapter over botocore's StreamingBody so ObjectReader can buffer it."""

    def __init__(self, body: Any, url: str) -> None:
        self._body = body
        self._url = url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from botocore.exceptions import BotoCoreError

        try:
            data = self._body.read(len(buffer))
        except BotoCoreError as exc:
            raise ObjectStoreError(f"reading {self._url} failed mid-stream: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        # RawIOBase.readall would read 8 KiB at a time; one read is far faster over HTTP.
        from botocore.exceptions import BotoCoreError

        try:
            return self._body.read()
        except BotoCoreError as exc:
            raise ObjectStoreError(f"reading {self._url} failed mid-stream: {exc}") from exc

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


@contextmanager
def _seekable(data: bytes | BinaryIO) -> Iterator[bytes | BinaryIO]:
    """botocore hashes and may resend the body, so it must seek: spool pipes and sockets."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    if isinstance(data, str) or not hasattr(data, "read"):
        raise TypeError(f"object data must be bytes or a binary file, not {type(data).__name__}")
    try:
        seekable = bool(data.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if seekable:
        yield data
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        shutil.copyfileobj(data, spool, _SPOOL_IN_MEMORY // 8)
        spool.seek(0)
        yield spool


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
