"""Moving one file either way; multipart parts and ranged reads run in a shared part pool."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from data_platform.core.files import regular_file_mode
from data_platform.core.objectstore import ObjectInfo
from data_platform.s3sync.budget import ByteBudget
from data_platform.s3sync.compare import METADATA_MD5, local_digests, remember_if_unchanged
from data_platform.s3sync.download import Downloader
from data_platform.s3sync.hashcache import HashCache, file_signature, now_ns
from data_platform.s3sync.hashing import Digests, PartPolicy
from data_platform.s3sync.inventory import Cancelled, LocalFile
from data_platform.s3sync.progress import Progress


class ChangedWhileUploading(Exception):
    """The local file changed between the scan and the end of its upload."""

    def __str__(self) -> str:
        return "changed while it was uploaded; nothing was stored, run the sync again"


def _content_md5(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def wait_all(futures: list[Future]) -> list[Any]:
    """Results in order; on the first error cancel what has not started and wait for the rest."""
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    if any(f.exception() for f in done):
        for future in futures:
            future.cancel()
        wait(futures)
    return [future.result() for future in futures]


def _check_unchanged(file: LocalFile, now: os.stat_result) -> None:
    # size, mtime, ctime and inode: what the scan saw must still be what is on disk
    if file_signature(now) != file_signature(file.stat):
        raise ChangedWhileUploading()


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
        cancelled: threading.Event,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.policy = policy
        self.cache = cache
        self.progress = progress
        self.part_pool = part_pool
        self.memory = memory
        self.cancelled = cancelled
        self.downloader = Downloader(self, regular_file_mode())

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    # -- upload -----------------------------------------------------------------------------

    def upload(self, file: LocalFile, key: str) -> int:
        """Upload `file` to `key`; returns bytes sent. Raises OSError / botocore errors."""
        if self.policy.is_multipart(file.size):
            return self._upload_multipart(file, key)
        started = now_ns()
        with self.memory.reserve(file.size):
            self._check_cancelled()
            with open(file.path, "rb") as handle:
                data = handle.read()
                _check_unchanged(file, os.fstat(handle.fileno()))
            digest = hashlib.md5(data)
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=_content_md5(digest.digest()),
                # Stored with the object: a download checks it instead of computing the MD5.
                ChecksumAlgorithm="CRC32",
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
            parts = wait_all(futures)
            self._check_cancelled()
            _check_unchanged(file, os.stat(file.path))  # parts were read at different times
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
            self._check_cancelled()
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

    def download(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        return self.downloader.download(remote, target, relative)
