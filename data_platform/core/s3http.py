"""A lean S3 client for bulk transfers: SigV4 over one kept-alive http.client connection per
thread, speaking the few operations `s3sync` needs with boto3's parameter and response names.

Why not boto3 on this path (measured, see docs/core.md): importing boto3 and building a
client costs ~0.9 s per process here, most of a no-op sync, and botocore's per-request layers
(event hooks, a SHA-256 of every body over HTTP, model-driven XML parsing) take CPU from the
transfers. Everything else in the platform keeps using boto3.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import random
import socket
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from data_platform.core.s3xml import multipart_uploads_page, objects_page, text_of
from data_platform.core.sigv4 import Credentials, SigV4Signer, canonical_query, quote_path

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6  # connection errors, 5xx and throttling; backoff 0.1 s doubling, jittered
_CLEAN_UP = {"AbortMultipartUpload"}  # what a stopped client still sends
_RETRY_STATUS = {429, 500, 502, 503, 504}
_META = "x-amz-meta-"
_TIMEOUT = 60.0


class S3Error(Exception):
    """S3 answered with an error; `.response` is shaped like botocore ClientError's."""

    def __init__(self, operation: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} ({status}) from {operation}: {message}".rstrip(": "))
        self.response = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


class S3ConnectionError(Exception):
    """The endpoint could not be reached (after retries)."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str  # host[:port]
    path_style: bool  # custom endpoints (moto, MinIO): bucket in the path

    @classmethod
    def parse(cls, url: str, path_style: bool) -> Endpoint:
        parts = urlsplit(url)
        return cls(parts.scheme or "https", parts.netloc, path_style)

    def locate(self, bucket: str, key: str) -> tuple[str, str]:
        """(host, quoted path) of an object or bucket request."""
        if self.path_style or "." in bucket:
            return self.host, quote_path(f"/{bucket}/{key}")
        return f"{bucket}.{self.host}", quote_path(f"/{key}")


class ChecksumMismatch(Exception):
    """A body's bytes do not have the CRC32 S3 sent with them (botocore: FlexibleChecksumError)."""


def crc32_header(data: bytes | memoryview) -> str:
    """S3's `x-amz-checksum-crc32` value of `data`."""
    return _crc32_text(zlib.crc32(data))


def _crc32_text(crc: int) -> str:
    """A CRC32 as S3 writes it: big-endian, base64."""
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


class _Body:
    """The streamed body of a GET; `read(n)` as botocore's StreamingBody. With the CRC32 S3 sent,
    `read()` (the rest) checks the bytes, as botocore's StreamingChecksumBody does at the end:
    ChecksumMismatch."""

    def __init__(self, response: http.client.HTTPResponse, crc32: str | None = None) -> None:
        self._response = response
        self._expected = crc32
        self._crc = 0

    def read(self, amount: int | None = None) -> bytes:
        data = self._response.read(amount)
        if self._expected is not None:
            self._crc = zlib.crc32(data, self._crc)
            if amount is None:  # the rest of the body (a body cut short is resumed instead)
                actual = _crc32_text(self._crc)
                if actual != self._expected:
                    raise ChecksumMismatch(f"CRC32 {actual}, but S3 sent {self._expected}")
        return data

    def close(self) -> None:
        self._response.close()


class S3HttpClient:
    """Thread-safe; each thread keeps its own connection, so the pool is as big as the workers."""

    def __init__(
        self,
        endpoint: Endpoint,
        region: str,
        credentials: Callable[[], Credentials],
        ca_bundle: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self._credentials = credentials
        self._signer = SigV4Signer(region)
        self._local = threading.local()
        # Every thread's connection, for interrupt(); gone with its thread.
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._stopped = False
        self._tls = None
        if endpoint.scheme == "https":
            import ssl  # only for TLS endpoints: plain-HTTP servers skip its import

            self._tls = ssl.create_default_context(cafile=ca_bundle)

    def __repr__(self) -> str:
        return f"S3HttpClient({self.endpoint.scheme}://{self.endpoint.host}, {self.region})"

    def interrupt(self) -> None:
        """Stop for good: requests in flight on every thread fail now (their sockets are shut
        down) and later ones at once, except the clean-up (aborting multipart uploads). A
        stopping sync then ends without waiting out a stalled connection's timeout and retries."""
        self._stopped = True
        with self._connections_lock:
            sockets = [connection.sock for connection in self._connections]
        for sock in sockets:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # -- operations (boto3 names) -----------------------------------------------------------

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **options: Any) -> dict[str, Any]:
        headers = _put_headers(options)
        if options.get("ChecksumAlgorithm") == "CRC32":
            headers["x-amz-checksum-crc32"] = crc32_header(Body)
            headers["x-amz-sdk-checksum-algorithm"] = "CRC32"
        response = self._call("PutObject", "PUT", Bucket, Key, {}, headers, Body)
        return {"ETag": response.getheader("ETag", "")}

    def get_object(self, *, Bucket: str, Key: str, **options: Any) -> dict[str, Any]:
        headers = {"If-Match": options["IfMatch"]} if "IfMatch" in options else {}
        if "Range" in options:
            headers["Range"] = options["Range"]
        if options.get("ChecksumMode") == "ENABLED":
            headers["x-amz-checksum-mode"] = "ENABLED"
        response = self._call("GetObject", "GET", Bucket, Key, {}, headers, stream=True)
        fields = _object_fields(response)
        return {**fields, "Body": _Body(response, fields.get("ChecksumCRC32"))}

    def head_object(self, *, Bucket: str, Key: str, **options: Any) -> dict[str, Any]:
        headers = {"If-Match": options["IfMatch"]} if "IfMatch" in options else {}
        query = {"partNumber": str(options["PartNumber"])} if "PartNumber" in options else {}
        return _object_fields(self._call("HeadObject", "HEAD", Bucket, Key, query, headers))

    def create_multipart_upload(self, *, Bucket: str, Key: str, **options: Any) -> dict[str, Any]:
        headers = _put_headers(options)
        response = self._call(
            "CreateMultipartUpload", "POST", Bucket, Key, {"uploads": ""}, headers
        )
        return {"UploadId": text_of(response.data, "UploadId") or ""}

    def upload_part(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        PartNumber: int,
        Body: bytes,
        ContentMD5: str,
    ) -> dict[str, Any]:
        query = {"partNumber": str(PartNumber), "uploadId": UploadId}
        headers = {"Content-MD5": ContentMD5}
        response = self._call("UploadPart", "PUT", Bucket, Key, query, headers, Body)
        return {"ETag": response.getheader("ETag", "")}

    def complete_multipart_upload(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        MultipartUpload: Mapping[str, Any],
    ) -> dict[str, Any]:
        parts = "".join(
            f"<Part><PartNumber>{part['PartNumber']}</PartNumber><ETag>{part['ETag']}</ETag></Part>"
            for part in MultipartUpload["Parts"]
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        query = {"uploadId": UploadId}
        response = self._call("CompleteMultipartUpload", "POST", Bucket, Key, query, {}, body)
        # S3 may answer 200 and still report an error in the body.
        code = text_of(response.data, "Code")
        if code:
            message = text_of(response.data, "Message") or ""
            raise S3Error("CompleteMultipartUpload", 200, code, message)
        return {}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        self._call("AbortMultipartUpload", "DELETE", Bucket, Key, {"uploadId": UploadId}, {})
        return {}

    def list_objects_v2(self, **params: str) -> dict[str, Any]:
        query = {"list-type": "2", "encoding-type": "url", "prefix": params.get("Prefix", "")}
        if params.get("ContinuationToken"):
            query["continuation-token"] = params["ContinuationToken"]
        if params.get("StartAfter"):
            query["start-after"] = params["StartAfter"]
        if params.get("MaxKeys"):
            query["max-keys"] = str(params["MaxKeys"])
        response = self._call("ListObjectsV2", "GET", params["Bucket"], "", query, {})
        return objects_page(response.data)

    def list_multipart_uploads(self, **params: str) -> dict[str, Any]:
        query = {"uploads": "", "prefix": params.get("Prefix", "")}
        for name, field in (("KeyMarker", "key-marker"), ("UploadIdMarker", "upload-id-marker")):
            if params.get(name):
                query[field] = params[name]
        response = self._call("ListMultipartUploads", "GET", params["Bucket"], "", query, {})
        return multipart_uploads_page(response.data)

    def get_paginator(self, operation: str) -> _Paginator:
        if operation == "list_objects_v2":
            return _Paginator(self.list_objects_v2, {"NextContinuationToken": "ContinuationToken"})
        if operation == "list_multipart_uploads":
            markers = {"NextKeyMarker": "KeyMarker", "NextUploadIdMarker": "UploadIdMarker"}
            return _Paginator(self.list_multipart_uploads, markers)
        raise ValueError(f"no paginator for {operation}")

    # -- transport --------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        method: str,
        bucket: str,
        key: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes = b"",
        stream: bool = False,
    ) -> Any:
        host, path = self.endpoint.locate(bucket, key)
        query_string = canonical_query(query)
        target = f"{path}?{query_string}" if query_string else path
        refusable = operation not in _CLEAN_UP
        for attempt in range(1, MAX_ATTEMPTS + 1):
            signed = self._signer.sign(
                method, host, path, query_string, headers, self._credentials()
            )
            connection = self._connection(host)
            try:
                if connection.sock is None:
                    connection.connect()  # before the check: interrupt() then sees the socket
                if self._stopped and refusable:
                    raise S3ConnectionError(f"{operation} not sent: the transfer is stopping")
                connection.request(method, target, body=body or None, headers=signed)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if attempt == MAX_ATTEMPTS or (self._stopped and refusable):
                    where = f"{self.endpoint.scheme}://{host}"
                    raise S3ConnectionError(f"could not reach {where} ({exc})") from None
                log.debug("%s %s: %s; retrying", operation, target, type(exc).__name__)
                _backoff(attempt)
                continue
            if response.status < 300:
                if stream:
                    self._local.streaming[host] = response
                else:
                    response.data = response.read()
                return response
            data = response.read()
            if response.status in _RETRY_STATUS and attempt < MAX_ATTEMPTS:
                log.debug("%s %s: HTTP %d; retrying", operation, target, response.status)
                _backoff(attempt)
                continue
            code = text_of(data, "Code") or str(response.status)
            raise S3Error(operation, response.status, code, text_of(data, "Message") or "")
        raise AssertionError("unreachable")

    def _connection(self, host: str) -> http.client.HTTPConnection:
        if not hasattr(self._local, "connections"):
            self._local.connections, self._local.streaming = {}, {}
        connection = self._local.connections.get(host)
        # A body left unread (an error part way) makes the connection unusable: start afresh.
        streamed = self._local.streaming.pop(host, None)
        if connection is not None and streamed is not None and not streamed.isclosed():
            connection.close()
        if connection is None:
            if self._tls is not None:
                connection = http.client.HTTPSConnection(host, timeout=_TIMEOUT, context=self._tls)
            else:
                connection = http.client.HTTPConnection(host, timeout=_TIMEOUT)
            self._local.connections[host] = connection
            with self._connections_lock:
                self._connections.add(connection)
        return connection


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0.5, 1.0) * 0.1 * 2 ** (attempt - 1))


def _put_headers(options: Mapping[str, Any]) -> dict[str, str]:
    headers = {f"{_META}{name}": value for name, value in options.get("Metadata", {}).items()}
    for option, header in (("ContentMD5", "Content-MD5"), ("ContentType", "Content-Type")):
        if option in options:
            headers[header] = options[option]
    return headers


def _object_fields(response: http.client.HTTPResponse) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in response.getheaders()}
    fields: dict[str, Any] = {
        "ContentLength": int(headers.get("content-length", 0)),
        "ETag": headers.get("etag", ""),
        "Metadata": {n[len(_META) :]: v for n, v in headers.items() if n.startswith(_META)},
    }
    if "last-modified" in headers:
        fields["LastModified"] = parsedate_to_datetime(headers["last-modified"])
    for header, name in (
        ("x-amz-server-side-encryption", "ServerSideEncryption"),
        ("x-amz-server-side-encryption-customer-algorithm", "SSECustomerAlgorithm"),
        ("x-amz-checksum-crc32", "ChecksumCRC32"),
    ):
        if header in headers:
            fields[name] = headers[header]
    return fields


class _Paginator:
    def __init__(self, call: Callable[..., dict[str, Any]], markers: dict[str, str]) -> None:
        self._call = call
        self._markers = markers

    def paginate(self, **params: str) -> Iterator[dict[str, Any]]:
        while True:
            page = self._call(**params)
            yield page
            if not page.get("IsTruncated"):
                return
            params = {**params, **{self._markers[n]: page[n] for n in self._markers if n in page}}
