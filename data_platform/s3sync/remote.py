"""The bucket a sync talks to: obstore for every transfer, boto3 only for what obstore lacks.

obstore (Rust's object_store) lists, puts (multipart for big files, aborted when the chunk source
raises), gets (ranged, pinned to an ETag with If-Match) and reads metadata with a metadata-only
GET. It imports in ~25 ms where boto3 needs ~0.4 s before the first request. boto3 is imported
only to list and abort unfinished multipart uploads (obstore cannot list them) and, with a part
size we cannot guess, to ask S3 for part 1's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from data_platform.core.aws import S3Connection
from data_platform.core.objectstore import ObjectInfo, strip_etag

_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")


class RemoteError(Exception):
    """An S3 request failed; `.code` is S3's error code when the server sent one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class Remote:
    """One bucket: `connection` is a `core.aws.S3Connection` or a boto3 S3 client."""

    def __init__(self, connection: S3Connection | Any, bucket: str) -> None:
        if not isinstance(connection, S3Connection):
            connection = S3Connection.from_boto3_client(connection)
        self.connection = connection
        self.bucket = bucket
        # The server checks each PUT's body against its SHA-256 (what Content-MD5 did).
        self.store = connection.obstore(bucket, checksum="sha256")
        self._boto3: Any = None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix` ("" or ending in "/")."""
        import obstore

        with errors():
            for batch in obstore.list(self.store, prefix or None, chunk_size=1000):
                for meta in batch:
                    yield ObjectInfo(
                        meta["path"],
                        meta["size"],
                        strip_etag(meta.get("e_tag") or ""),
                        meta.get("last_modified"),
                    )

    def put(self, key: str, body: Any, attributes: dict[str, str], **options: Any) -> str:
        """A single PUT of bytes, or a multipart upload of chunks (options as obstore.put's)."""
        import obstore

        with errors():
            return strip_etag(
                obstore.put(self.store, key, body, attributes=attributes, **options)["e_tag"] or ""
            )

    def get(self, key: str, etag: str, start: int, end: int, whole: bool) -> Any:
        """Bytes [start, end) of the version `etag` (a PreconditionFailed error if replaced)."""
        import obstore

        options: dict[str, Any] = {"if_match": f'"{etag}"'}
        if not whole:
            options["range"] = (start, end)
        with errors():
            return obstore.get(self.store, key, options=options)

    def metadata(self, key: str) -> dict[str, str]:
        """The object's user metadata (a metadata-only GET)."""
        import obstore

        with errors():
            return dict(obstore.get(self.store, key, options={"head": True}).attributes)

    def boto3(self) -> Any:
        """A boto3 S3 client on the same endpoint and credentials, made on first use."""
        if self._boto3 is None:
            import boto3

            credentials = self.connection.credentials()
            self._boto3 = boto3.client(
                "s3",
                endpoint_url=self.connection.endpoint_url,
                region_name=self.connection.region,
                aws_access_key_id=credentials["access_key_id"],
                aws_secret_access_key=credentials["secret_access_key"],
                aws_session_token=credentials.get("token"),
            )
        return self._boto3

    def first_part_size(self, key: str, etag: str) -> int:
        response = self.boto3().head_object(
            Bucket=self.bucket, Key=key, PartNumber=1, IfMatch=f'"{etag}"'
        )
        return int(response["ContentLength"])


class errors:
    """obstore's errors as RemoteError carrying S3's error code."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, RemoteError):
            return False
        from obstore.exceptions import BaseError, PreconditionError

        if isinstance(exc, PreconditionError):
            raise RemoteError(str(exc).splitlines()[0], "PreconditionFailed") from exc
        # obstore's own errors only: a chunk source's error about the local file passes through.
        # (obstore raises the builtin FileNotFoundError for a missing object.)
        from_store = isinstance(exc, FileNotFoundError) and "Object at location" in str(exc)
        if from_store or isinstance(exc, BaseError) or type(exc).__module__.startswith("obstore"):
            found = _CODE.search(str(exc))
            missing = "NoSuchKey" if isinstance(exc, FileNotFoundError) else ""
            code = found[1] if found else missing
            raise RemoteError(_summary(exc, code), code) from exc
        return False


def _summary(exc: BaseException, code: str) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"{code}: {first}" if code else first
