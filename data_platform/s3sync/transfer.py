"""Moving one file either way; multipart parts and ranged reads run in a shared part pool."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import tempfile
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from data_platform.core.objectstore import ObjectInfo
from data_platform.s3sync.budget import ByteBudget
from data_platform.s3sync.compare import METADATA_MD5, local_digests, remember_if_unchanged
from data_platform.s3sync.hashcache import HashCache, now_ns
from data_platform.s3sync.hashing import (
    READ_BLOCK,
    DigestBuilder,
    Digests,
    PartPolicy,
    compute_digests,
    part_sizes_to_try,
)
from data_platform.s3sync.inventory import TEMP_SUFFIX, LocalFile
from data_platform.s3sync.progress import Progress


def _content_md5(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _wait_all(futures: list[Future]) -> list[Any]:
    """Results in order; on the first error cancel what has not started and wait for the rest."""
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    if any(f.exception() for f in done):
        for future in futures:
            future.cancel()
        wait(futures)
    return [future.result() for future in futures]


def _current_umask() -> int:
    # Reading the umask means setting it; done once, before worker threads create files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Transfers:
    """Uploads and downloads of single files against one bucket."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        policy: PartPolicy,
        cache: HashCache,
        progress: Progress,
        part_pool: ThreadPoolExecutor,
        memory: ByteBudget,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.policy = policy
        self.cache = cache
        self.progress = progress
        self.part_pool = part_pool
        self.memory = memory
        self.file_mode = 0o666 & ~_current_umask()

    # -- upload -----------------------------------------------------------------------------

    def upload(self, file: LocalFile, key: str) -> int:
        """Upload `file` to `key`; returns bytes sent. Raises OSError / botocore errors."""
        if self.policy.is_multipart(file.size):
            return self._upload_multipart(file, key)
        started = now_ns()
        with self.memory.reserve(file.size):
            with open(file.path, "rb") as handle:
                data = handle.read()
            digest = hashlib.md5(data)
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=_content_md5(digest.digest()),
                ContentType=_content_type(file.path.name),
                Metadata={METADATA_MD5: digest.hexdigest()},
            )
        self.progress.add_bytes(len(data))
        with contextlib.suppress(OSError):
            remember_if_unchanged(
                self.cache,
                file.relative,
                file.path,
                file.stat,
                Digests(digest.hexdigest()),
                started,
            )
        return len(data)

    def _upload_multipart(self, file: LocalFile, key: str) -> int:
        part_size = self.policy.part_size_for(file.size)
        # The whole-file MD5 goes into metadata at creation, so it is needed before any part.
        digests = local_digests(file.relative, file.path, file.stat, [part_size], self.cache)
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            ContentType=_content_type(file.path.name),
            Metadata={METADATA_MD5: digests.md5},
        )["UploadId"]
        offsets = range(0, max(file.size, 1), part_size)
        futures = [
            self.part_pool.submit(
                self._upload_part, file.path, key, upload_id, number, offset, part_size
            )
            for number, offset in enumerate(offsets, start=1)
        ]
        try:
            parts = _wait_all(futures)
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"ETag": etag, "PartNumber": n} for n, etag, _, _ in parts]
                },
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return sum(length for _, _, _, length in parts)

    def _upload_part(
        self, path: Path, key: str, upload_id: str, number: int, offset: int, part_size: int
    ) -> tuple[int, str, bytes, int]:
        with self.memory.reserve(part_size):
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(part_size)
            digest = hashlib.md5(data).digest()
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=_content_md5(digest),
            )
        self.progress.add_bytes(len(data))
        return number, response["ETag"], digest, len(data)

    # -- download ---------------------------------------------------------------------------

    def download(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        """Write `remote` to `target` through a temporary file in the same folder + rename."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX
        )
        part_sizes = part_sizes_to_try(remote.size, remote.etag, self.policy)
        try:
            os.fchmod(fd, self.file_mode)  # mkstemp creates 0600; match a normal file
            with os.fdopen(fd, "wb") as handle:
                if self.policy.is_multipart(remote.size):
                    last_modified = self._ranged_get(remote, handle.fileno())
                    digests = None
                else:
                    last_modified, digests = self._streamed_get(remote, handle, part_sizes)
            timestamp = last_modified.timestamp()
            os.utime(temp_name, (timestamp, timestamp))
            os.replace(temp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        started = now_ns()
        stat = os.stat(target)
        if digests is None:
            digests = compute_digests(target, part_sizes)
        self.cache.store(relative, stat, digests, started)
        return remote.size

    def _streamed_get(
        self, remote: ObjectInfo, handle: Any, part_sizes: list[int]
    ) -> tuple[Any, Digests]:
        response = self.client.get_object(
            Bucket=self.bucket, Key=remote.key, IfMatch=f'"{remote.etag}"'
        )
        builder = DigestBuilder(part_sizes)
        received = 0
        for chunk in response["Body"].iter_chunks(READ_BLOCK):
            handle.write(chunk)
            builder.update(chunk)
            received += len(chunk)
            self.progress.add_bytes(len(chunk))
        expected = response["ContentLength"]
        if received != expected:
            raise OSError(f"connection closed after {received} of {expected} bytes")
        return response["LastModified"], builder.result()

    def _ranged_get(self, remote: ObjectInfo, fileno: int) -> Any:
        part_size = self.policy.part_size_for(remote.size)
        futures = [
            self.part_pool.submit(self._get_range, remote, fileno, offset, part_size)
            for offset in range(0, remote.size, part_size)
        ]
        return _wait_all(futures)[0]

    def _get_range(self, remote: ObjectInfo, fileno: int, offset: int, length: int) -> Any:
        last = min(offset + length, remote.size) - 1
        response = self.client.get_object(
            Bucket=self.bucket,
            Key=remote.key,
            Range=f"bytes={offset}-{last}",
            IfMatch=f'"{remote.etag}"',  # every range from the same version
        )
        position = offset
        for chunk in response["Body"].iter_chunks(READ_BLOCK):
            os.pwrite(fileno, chunk, position)
            position += len(chunk)
            self.progress.add_bytes(len(chunk))
        if position != last + 1:
            raise OSError(f"range {offset}-{last} of {remote.key} ended at {position}")
        return response["LastModified"]
