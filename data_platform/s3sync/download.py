"""Downloading one object: resumed when the body breaks off, verified before it is renamed in.

The bytes go to a temporary file next to the target (`core.files.atomic_file`). A body read that
fails part way (connection reset, short body) is resumed with a Range request from the byte
where it stopped, pinned to the listed ETag (If-Match). Before the rename the bytes must match the
object: the file's MD5 for a single-part ETag (computed while the body streams in), the multipart
ETag for the uploader's part size, or our `md5` metadata. An object that offers none of these
(SSE-KMS or SSE-C without our metadata) is accepted on its length, which is checked too. Nothing
unverified ever takes the target's name; the file is fsynced before the rename.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_platform.core.files import atomic_file, pwrite_all
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
from data_platform.s3sync.inventory import TEMP_SUFFIX, Cancelled, body_errors

if TYPE_CHECKING:
    from data_platform.s3sync.transfer import Transfers

log = logging.getLogger(__name__)

BODY_ATTEMPTS = 5  # reads of one body (or range): the first plus four resumptions
# obstore hands a body out in 10 MB pieces by default: a fresh 10 MB buffer each, whose page
# faults cost ~0.2 s of system time per 400 MB (measured); small pieces reuse freed memory.
BODY_CHUNK = 256 * 1024


class ContentMismatch(Exception):
    """The downloaded bytes are not the object's; nothing was written."""


class Downloader:
    """The download half of `Transfers` (same bucket, pools and cancel flag)."""

    def __init__(self, transfers: Transfers, file_mode: int) -> None:
        self.remote = transfers.remote
        self.policy = transfers.policy
        self.cache = transfers.cache
        self.progress = transfers.progress
        self.part_pool = transfers.part_pool
        self.cancelled = transfers.cancelled
        self.file_mode = file_mode
        self.body_errors = body_errors()

    def download(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        """Write `remote` to `target`; returns its size. Raises ContentMismatch, Cancelled,
        OSError and S3 errors; the target is untouched unless everything checked out."""
        target.parent.mkdir(parents=True, exist_ok=True)
        part_sizes = part_sizes_to_try(remote.size, remote.etag, self.policy)
        with atomic_file(target, suffix=TEMP_SUFFIX, mode=self.file_mode) as out:
            if self.policy.is_multipart(remote.size):
                first = self._ranged_get(remote, out.fileno())
                digests = compute_digests(out.temp, part_sizes)
            else:
                builder = DigestBuilder(part_sizes)
                first = self._get(remote, 0, remote.size, out.fileno(), builder)
                digests = builder.result()
            self._verify(remote, first.attributes, digests, out.temp)
            timestamp = first.meta["last_modified"].timestamp()
            os.utime(out.fileno(), (timestamp, timestamp))
        started = now_ns()
        self.cache.store(relative, os.stat(target), digests, started)
        return remote.size

    def _ranged_get(self, remote: ObjectInfo, fileno: int) -> Any:
        from data_platform.s3sync.transfer import wait_all

        part_size = self.policy.part_size_for(remote.size)
        futures = [
            self.part_pool.submit(
                self._get, remote, offset, min(offset + part_size, remote.size), fileno, None
            )
            for offset in range(0, remote.size, part_size)
        ]
        return wait_all(futures)[0]

    def _get(
        self,
        remote: ObjectInfo,
        start: int,
        end: int,
        fileno: int,
        builder: DigestBuilder | None,
    ) -> Any:
        """Bytes [start, end) of the object into the file at the same offsets, feeding `builder`
        in order; a body that breaks off is resumed where it stopped. Returns the first
        response (its `meta` and `attributes`)."""
        at, first, error = [start], None, None
        for _attempt in range(BODY_ATTEMPTS):
            if self.cancelled.is_set():  # a body cut by the stop is not resumed
                raise Cancelled()
            position = at[0]
            if position == end:  # an empty object, or a range that ended with its last read
                break
            whole = start == 0 and position == 0 and end == remote.size
            # If-Match pins every request (and every resumption) to the listed version.
            response = self.remote.get(remote.key, remote.etag, position, end, whole)
            first = first or response
            try:
                self._copy_body(response, at, end, fileno, builder)
            except self.body_errors as exc:
                error = exc
                log.debug("body of %s broke off at byte %d (%s); resuming", remote.key, at[0], exc)
                continue
            if at[0] == end:
                break
            error = OSError(f"body of {remote.key} ended at byte {at[0]} of {end}")
        else:
            raise OSError(
                f"download broke off {BODY_ATTEMPTS} times, last at byte {at[0]} ({error}); "
                "run the sync again"
            )
        if first is None:  # nothing to read: still one request for the object's details
            first = self.remote.get(remote.key, remote.etag, 0, 0, whole=True)
        return first

    def _copy_body(
        self, response: Any, at: list[int], end: int, fileno: int, builder: DigestBuilder | None
    ) -> None:
        """Copy until `end` or the body ends; `at[0]` always holds the next byte to write."""
        position = at[0]
        for chunk in response.stream(min_chunk_size=BODY_CHUNK):
            if self.cancelled.is_set():
                raise Cancelled()
            view = memoryview(chunk)[: end - position]
            pwrite_all(fileno, view, position)
            if builder is not None:
                builder.update(view)
            position += len(view)
            at[0] = position
            self.progress.add_bytes(len(view))
            if position >= end:
                break

    def _verify(
        self, remote: ObjectInfo, attributes: dict[str, str], digests: Digests, temp: Path
    ) -> None:
        metadata_md5 = attributes.get(METADATA_MD5)
        if digests.matches_etag(remote.etag) or metadata_md5 == digests.md5:
            return
        if metadata_md5 is None:
            if etag_parts(remote.etag) is None and self._encrypted(remote):
                log.debug("%s: SSE-KMS ETag is not an MD5; accepted on its length", remote.key)
                return
            if etag_parts(remote.etag) and self._matches_uploader_part_size(remote, temp):
                return
        raise ContentMismatch(
            "downloaded bytes do not match the object's ETag/md5; nothing was written, "
            "run the sync again"
        )

    def _encrypted(self, remote: ObjectInfo) -> bool:
        """SSE-KMS or SSE-C, whose ETag is not the MD5 of the bytes (a HEAD through boto3:
        obstore does not return these headers; only asked after a mismatch)."""
        head = self.remote.boto3().head_object(
            Bucket=self.remote.bucket, Key=remote.key, IfMatch=f'"{remote.etag}"'
        )
        return head.get("ServerSideEncryption") == "aws:kms" or bool(
            head.get("SSECustomerAlgorithm")
        )

    def _matches_uploader_part_size(self, remote: ObjectInfo, temp: Path) -> bool:
        """A multipart ETag made with a part size we did not guess: ask S3 for part 1's size."""
        first_part = self.remote.first_part_size(remote.key, remote.etag)
        return compute_digests(temp, [first_part]).matches_etag(remote.etag)
