"""Downloading one object: resumed when the body breaks off, verified before it is renamed in.

The bytes go to a temporary file next to the target (`core.files.atomic_file`). A body read that
fails part way (connection reset, short body) is resumed with a Range request from the byte
where it stopped, pinned to the listed ETag. Before the rename the bytes must match the object:
a whole body by the CRC32 stored with it when there is one (our uploads store it; zlib's CRC32 runs
~4x as fast as MD5 here, and for a plain single-part object the ETag is then its MD5), otherwise
by the file's MD5 for a single-part ETag, the multipart ETag for the uploader's part size, or our
`md5` metadata. An object that offers none of these (SSE-KMS without our metadata) is accepted
on its length, which is checked too. Nothing unverified ever takes the target's name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from data_platform.core.files import READ_BLOCK, atomic_file, pwrite_all
from data_platform.core.objectstore import ObjectInfo
from data_platform.s3sync.compare import METADATA_MD5
from data_platform.s3sync.hashcache import now_ns
from data_platform.s3sync.hashing import (
    DigestBuilder,
    Digests,
    compute_digests,
    etag_parts,
    part_sizes_to_try,
)
from data_platform.s3sync.inventory import TEMP_SUFFIX, Cancelled, body_errors, checksum_errors

if TYPE_CHECKING:
    from data_platform.s3sync.transfer import Transfers

log = logging.getLogger(__name__)

BODY_ATTEMPTS = 5  # reads of one body (or range): the first plus four resumptions
CheckedBy = Literal["crc32", "md5", "nothing"]


class ContentMismatch(Exception):
    """The downloaded bytes are not the object's; nothing was written."""


class Downloader:
    """The download half of `Transfers` (same client, bucket, pools and cancel flag)."""

    def __init__(self, transfers: Transfers, file_mode: int) -> None:
        self.client = transfers.client
        self.bucket = transfers.bucket
        self.policy = transfers.policy
        self.cache = transfers.cache
        self.progress = transfers.progress
        self.part_pool = transfers.part_pool
        self.cancelled = transfers.cancelled
        self.file_mode = file_mode
        self.body_errors = body_errors()
        self.checksum_errors = checksum_errors()

    def download(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        """Write `remote` to `target`; returns its size. Raises ContentMismatch, Cancelled,
        OSError and botocore errors; the target is untouched unless everything checked out."""
        target.parent.mkdir(parents=True, exist_ok=True)
        part_sizes = part_sizes_to_try(remote.size, remote.etag, self.policy)
        with atomic_file(target, suffix=TEMP_SUFFIX, mode=self.file_mode) as out:
            if self.policy.is_multipart(remote.size):
                head = self._ranged_get(remote, out.fileno())
                digests = compute_digests(out.temp, part_sizes)
            else:
                builder = DigestBuilder(part_sizes)
                head, checked_by = self._get(remote, 0, remote.size, out.fileno(), builder)
                if checked_by == "crc32":
                    digests = Digests(remote.etag.strip('"'))  # a plain object's ETag is its MD5
                elif checked_by == "md5":
                    digests = builder.result()
                else:
                    digests = compute_digests(out.temp, part_sizes)
            self._verify(remote, head, digests, out.temp)
            timestamp = head["LastModified"].timestamp()
            os.utime(out.fileno(), (timestamp, timestamp))
        started = now_ns()
        self.cache.store(relative, os.stat(target), digests, started)
        return remote.size

    def _ranged_get(self, remote: ObjectInfo, fileno: int) -> dict[str, Any]:
        from data_platform.s3sync.transfer import wait_all

        part_size = self.policy.part_size_for(remote.size)
        futures = [
            self.part_pool.submit(
                self._get, remote, offset, min(offset + part_size, remote.size), fileno, None
            )
            for offset in range(0, remote.size, part_size)
        ]
        return wait_all(futures)[0][0]

    def _get(
        self,
        remote: ObjectInfo,
        start: int,
        end: int,
        fileno: int,
        builder: DigestBuilder | None,
    ) -> tuple[dict[str, Any], CheckedBy]:
        """Bytes [start, end) of the object into the file at the same offsets; a body that
        breaks off is resumed where it stopped. Returns the first response's headers and what
        checked the bytes: the CRC32 S3 sent with a whole body (our uploads store one; either
        client verifies it once the body is read to its end), so `builder` is not fed and no MD5 is
        computed; else the MD5 `builder` was fed; "nothing" when neither covers every byte."""
        at, first, error = [start], None, None
        whole = start == 0 and end == remote.size
        checked_by: CheckedBy = "md5" if builder is not None else "nothing"
        for _attempt in range(BODY_ATTEMPTS):
            if self.cancelled.is_set():  # a body cut by the stop is not resumed
                raise Cancelled()
            position = at[0]
            ranged = {} if whole and position == 0 else {"Range": f"bytes={position}-{end - 1}"}
            checksum = {} if ranged else {"ChecksumMode": "ENABLED"}
            # IfMatch pins every request (and every resumption) to the listed version.
            response = self.client.get_object(
                Bucket=self.bucket, Key=remote.key, IfMatch=f'"{remote.etag}"', **ranged, **checksum
            )
            if first is None:
                first = response
                if builder is not None and _crc32_covers(remote, response):
                    builder, checked_by = None, "crc32"
            elif checked_by == "crc32":
                checked_by = "nothing"  # resumed: the CRC32 covers no single body any more
            try:
                self._copy_body(response["Body"], at, end, fileno, builder)
            except self.body_errors as exc:
                error = exc
                log.debug("body of %s broke off at byte %d (%s); resuming", remote.key, at[0], exc)
                continue
            if at[0] == end:
                self._finish_body(response["Body"])
                return first, checked_by
            error = OSError(f"body of {remote.key} ended at byte {at[0]} of {end}")
        raise OSError(
            f"download broke off {BODY_ATTEMPTS} times, last at byte {at[0]} ({error}); "
            "run the sync again"
        )

    def _finish_body(self, body: Any) -> None:
        """Read the body to its end: frees the connection, and a CRC32 S3 sent is checked."""
        try:
            body.read()
        except self.checksum_errors:
            raise ContentMismatch(
                "downloaded bytes do not match the object's CRC32; nothing was written, "
                "run the sync again"
            ) from None

    def _copy_body(
        self, body: Any, at: list[int], end: int, fileno: int, builder: DigestBuilder | None
    ) -> None:
        """Copy until `end` or the body ends; `at[0]` always holds the next byte to write."""
        position = at[0]
        while position < end:
            if self.cancelled.is_set():
                raise Cancelled()
            chunk = body.read(min(READ_BLOCK, end - position))
            if not chunk:
                break
            pwrite_all(fileno, chunk, position)
            if builder is not None:
                builder.update(chunk)
            position += len(chunk)
            at[0] = position
            self.progress.add_bytes(len(chunk))

    def _verify(
        self, remote: ObjectInfo, head: dict[str, Any], digests: Digests, temp: Path
    ) -> None:
        metadata_md5 = head.get("Metadata", {}).get(METADATA_MD5)
        if digests.matches_etag(remote.etag) or metadata_md5 == digests.md5:
            return
        if metadata_md5 is None:
            if _encrypted(head) and etag_parts(remote.etag) is None:
                log.debug("%s: SSE-KMS ETag is not an MD5; accepted on its length", remote.key)
                return
            if etag_parts(remote.etag) and self._matches_uploader_part_size(remote, temp):
                return
        raise ContentMismatch(
            "downloaded bytes do not match the object's ETag/md5; nothing was written, "
            "run the sync again"
        )

    def _matches_uploader_part_size(self, remote: ObjectInfo, temp: Path) -> bool:
        """A multipart ETag made with a part size we did not guess: ask S3 for part 1's size."""
        first_part = self.client.head_object(
            Bucket=self.bucket, Key=remote.key, PartNumber=1, IfMatch=f'"{remote.etag}"'
        )["ContentLength"]
        return compute_digests(temp, [first_part]).matches_etag(remote.etag)


def _encrypted(head: dict[str, Any]) -> bool:
    """SSE-KMS or SSE-C: the ETag is not the MD5 of the bytes."""
    return head.get("ServerSideEncryption") == "aws:kms" or bool(head.get("SSECustomerAlgorithm"))


def _crc32_covers(remote: ObjectInfo, response: dict[str, Any]) -> bool:
    """A whole body with S3's CRC32 of the object, whose ETag is its MD5 (single part, not
    encrypted with KMS or a customer key): checking the CRC32 proves the file is the object."""
    return (
        bool(response.get("ChecksumCRC32"))
        and etag_parts(remote.etag) is None
        and not _encrypted(response)
    )
