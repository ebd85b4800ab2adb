"""Moving one file either way; multipart parts and ranged reads run in a shared part pool."""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import threading
from collections.abc import Iterator
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
from data_platform.s3sync.remote import Remote

PART_CONCURRENCY = 4  # parts of one file in flight; files run in parallel too


class ChangedWhileUploading(Exception):
    """The local file changed between the scan and the end of its upload."""

    def __str__(self) -> str:
        return "changed while it was uploaded; nothing was stored, run the sync again"


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
        remote: Remote,
        policy: PartPolicy,
        cache: HashCache,
        progress: Progress,
        pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor],
        workers: int,
        memory: ByteBudget,
        cancelled: threading.Event,
    ) -> None:
        self.remote = remote
        self.policy = policy
        self.cache = cache
        self.progress = progress
        self.file_pool, self.part_pool = pools
        self.memory = memory
        self.cancelled = cancelled
        self.workers = workers
        self.downloader = Downloader(self, regular_file_mode())
        self._small_objects: Any = None  # SmallObjectDownloads, made (with asyncio) on first use

    def start_upload(self, file: LocalFile, key: str) -> Future[int]:
        return self.file_pool.submit(self.upload, file, key)

    def start_download(self, remote: ObjectInfo, target: Path, relative: str) -> Future[int]:
        """Small plain objects go to the event loop (`small_objects`), the rest to a thread."""
        from data_platform.s3sync.small_objects import is_small

        if is_small(remote):
            return self._small_object_downloads().submit(remote, target, relative)
        return self.file_pool.submit(self.download, remote, target, relative)

    def close(self) -> None:
        if self._small_objects is not None:
            self._small_objects.close()

    def _small_object_downloads(self) -> Any:
        from data_platform.s3sync.small_objects import SmallObjectDownloads

        if self._small_objects is None:
            self._small_objects = SmallObjectDownloads(
                self.remote,
                self.cache,
                self.progress,
                self.cancelled,
                self.downloader.file_mode,
                requests=self.workers,
                general=lambda *job: self.file_pool.submit(self.download, *job),
            )
        return self._small_objects

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    # -- upload -----------------------------------------------------------------------------

    def upload(self, file: LocalFile, key: str) -> int:
        """Upload `file` to `key`; returns bytes sent. Raises OSError / S3 errors."""
        if self.policy.is_multipart(file.size):
            return self._upload_multipart(file, key)
        started = now_ns()
        with self.memory.reserve(file.size):
            self._check_cancelled()
            with open(file.path, "rb") as handle:
                data = handle.read()
                _check_unchanged(file, os.fstat(handle.fileno()))
            digest = hashlib.md5(data).hexdigest()
            # The server checks the body against the SHA-256 sent with it (the store's
            # checksum setting), and our `md5` metadata lets a download check without the ETag.
            self.remote.put(key, data, self._attributes(file, digest), use_multipart=False)
        self.progress.add_bytes(len(data))
        with contextlib.suppress(OSError):
            remember_if_unchanged(
                self.cache, file.relative, file.path, file.stat, Digests(digest), started
            )
        return len(data)

    def _upload_multipart(self, file: LocalFile, key: str) -> int:
        part_size = self.policy.part_size_for(file.size)
        # The whole-file MD5 goes into metadata at creation, so it is needed before any part.
        digests = local_digests(file.relative, file.path, file.stat, [part_size], self.cache)
        # obstore uploads the parts (up to PART_CONCURRENCY at once) and aborts the upload when
        # the chunk source raises: on a stop (Cancelled) or a file that changed meanwhile.
        self.remote.put(
            key,
            self._parts(file, part_size),
            self._attributes(file, digests.md5),
            use_multipart=True,
            chunk_size=part_size,
            max_concurrency=PART_CONCURRENCY,
        )
        return file.size

    def _parts(self, file: LocalFile, part_size: int) -> Iterator[bytes]:
        with open(file.path, "rb") as handle:
            while True:
                self._check_cancelled()
                data = handle.read(part_size)
                if not data:
                    break
                self.progress.add_bytes(len(data))
                yield data
            # Parts were read at different times: the last word before the upload completes.
            _check_unchanged(file, os.fstat(handle.fileno()))
            self._check_cancelled()

    @staticmethod
    def _attributes(file: LocalFile, md5: str) -> dict[str, str]:
        return {"Content-Type": _content_type(file.path.name), METADATA_MD5: md5}

    def download(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        return self.downloader.download(remote, target, relative)
