"""Small objects downloaded on one event loop and renamed into place in durable batches.

A download of many small files is bound by per-file costs, not bytes. Through the file threads
each 10 KB object cost a GET, a stream, an fsync and a rename on one of 16 threads: ~1 ms of CPU
per file, a third of it thread switches (172,000 futex calls for 2,000 files) and a quarter the
fsyncs. Here each object is one `get_async` read whole (at most SMALL_OBJECT bytes), its MD5
checked against the single-part ETag (or our `md5` metadata) before anything is written, then a
temporary file beside its target; finished files are renamed in batches after one `syncfs()`
(`core.files.rename_durably`), so nothing unverified or unsynced ever takes a name. The loop runs
in its own thread; each download is a `concurrent.futures.Future`, like a file thread's.

What is not plain goes the general way (`Downloader`): a multipart ETag, and any object whose
bytes do not match (SSE-KMS, SSE-C, or a body corrupted on the way, which fails there).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

from data_platform.core.files import rename_durably, temp_file_beside
from data_platform.core.objectstore import ObjectInfo
from data_platform.s3sync.compare import METADATA_MD5
from data_platform.s3sync.download import BODY_ATTEMPTS
from data_platform.s3sync.hashcache import HashCache, now_ns
from data_platform.s3sync.hashing import Digests, etag_parts
from data_platform.s3sync.inventory import TEMP_SUFFIX, Cancelled, body_errors
from data_platform.s3sync.progress import Progress
from data_platform.s3sync.remote import Remote, errors

log = logging.getLogger(__name__)

SMALL_OBJECT = 1024 * 1024  # read whole into memory; bigger ones stream through a file thread
BATCH_FILES = 256  # renamed after one syncfs; also when nothing else is in flight
BATCH_BYTES = 64 * 1024 * 1024
BATCH_SECONDS = 1.0  # the longest a finished file waits for its batch
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def is_small(remote: ObjectInfo) -> bool:
    return remote.size <= SMALL_OBJECT and etag_parts(remote.etag) is None


class _Mismatch(Exception):
    """The bytes are not the ETag's MD5: the general path decides (encryption, or a failure)."""


class SmallObjectDownloads:
    """Downloads of small objects, `requests` at a time, on an event loop of their own."""

    def __init__(
        self,
        remote: Remote,
        cache: HashCache,
        progress: Progress,
        cancelled: threading.Event,
        file_mode: int,
        requests: int,
        general: Callable[[ObjectInfo, Path, str], Future[int]],
    ) -> None:
        self.remote = remote
        self.cache = cache
        self.progress = progress
        self.cancelled = cancelled
        self.file_mode = file_mode
        self.general = general  # the file-thread download, for what is not plain
        self.body_errors = body_errors()
        self._loop = asyncio.new_event_loop()
        self._requests = asyncio.Semaphore(requests)
        self._batch = _Batch(self._loop)
        self._folders: set[Path] = set()
        self._etags_are_md5 = True  # until an object proves otherwise
        self._temp_names = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._lock = threading.Lock()
        self._queued: deque[tuple[Future[int], ObjectInfo, Path, str]] = deque()
        # Tasks alive at once: those reading a body plus those waiting for their batch. A task
        # per queued file would hold ~1.5 KB each (1.5 GB for a million files).
        self._window = requests + 2 * BATCH_FILES
        self._running = 0
        self._counter = itertools.count()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="s3sync-small", daemon=True
        )
        self._thread.start()

    def submit(self, remote: ObjectInfo, target: Path, relative: str) -> Future[int]:
        """Like `asyncio.run_coroutine_threadsafe`, but jobs handed in together wake the loop
        once (one wake-up per job cost the sync's thread ~30 us each)."""
        future: Future[int] = Future()
        with self._lock:
            self._queued.append((future, remote, target, relative))
            first = len(self._queued) == 1
        if first:
            self._loop.call_soon_threadsafe(self._start_queued)
        return future

    def _start_queued(self, _finished: object = None) -> None:
        if _finished is not None:
            self._running -= 1
        while self._running < self._window:
            with self._lock:
                if not self._queued:
                    return
                future, *job = self._queued.popleft()
            if future.cancelled():
                continue
            self._running += 1
            task = self._loop.create_task(self._download(*job))
            task.add_done_callback(self._start_queued)
            _chain(task, future, self._loop)

    def close(self) -> None:
        """Stop the loop (after the sync waited for its futures, or gave up on them)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _download(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        if not self._etags_are_md5:
            return await asyncio.wrap_future(self.general(remote, target, relative))
        self._batch.started()
        try:
            temp, md5 = await self._fetch_to_temp(remote, target)
        except _Mismatch:
            self._batch.finished()
            return await self._the_general_way(remote, target, relative)
        except BaseException:
            self._batch.finished()
            raise
        started = now_ns()
        await self._batch.rename(temp, target, remote.size)  # also ends this one's flight
        self.cache.store(relative, os.stat(target), Digests(md5), started)
        return remote.size

    async def _the_general_way(self, remote: ObjectInfo, target: Path, relative: str) -> int:
        log.debug("%s: bytes are not the ETag's MD5; checking the general way", remote.key)
        size = await asyncio.wrap_future(self.general(remote, target, relative))
        # Accepted there: its ETag is not an MD5 (SSE-KMS, SSE-C). The bucket's other objects
        # would each be read twice; from now on they go the general way at once.
        self._etags_are_md5 = False
        return size

    async def _fetch_to_temp(self, remote: ObjectInfo, target: Path) -> tuple[Path, str]:
        async with self._requests:
            if self.cancelled.is_set():
                raise Cancelled()
            response, body = await self._get(remote)
        md5 = hashlib.md5(body).hexdigest()
        if md5 != remote.etag and response.attributes.get(METADATA_MD5) != md5:
            raise _Mismatch()
        return self._write(target, body, response.meta["last_modified"].timestamp()), md5

    async def _get(self, remote: ObjectInfo) -> tuple[Any, bytes]:
        """The whole body, read again from the start when it breaks off; If-Match pins every
        read to the listed version."""
        import obstore

        error: BaseException | None = None
        for _attempt in range(BODY_ATTEMPTS):
            with errors():
                response = await obstore.get_async(
                    self.remote.store, remote.key, options={"if_match": f'"{remote.etag}"'}
                )
            try:
                with errors():
                    body = bytes(await response.bytes_async())
            except self.body_errors as exc:
                error = exc
                log.debug("body of %s broke off (%s); reading it again", remote.key, exc)
                continue
            if len(body) == remote.size:
                self.progress.add_bytes(len(body))
                return response, body
            error = OSError(f"body of {remote.key} has {len(body)} of {remote.size} bytes")
        raise OSError(f"download broke off {BODY_ATTEMPTS} times ({error}); run the sync again")

    def _write(self, target: Path, body: bytes, timestamp: float) -> Path:
        if target.parent not in self._folders:  # one mkdir per folder, not per file
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)
        # A name of our own (the run's leftovers were removed when it started); mkstemp's
        # random names and fchmod cost ~40 us a file, on the loop's one thread.
        temp = (
            target.parent / f".{target.name}.{self._temp_names}-{next(self._counter)}{TEMP_SUFFIX}"
        )
        try:
            fd = os.open(temp, _CREATE, self.file_mode)  # file_mode has the umask applied
        except FileExistsError:
            fd, temp = temp_file_beside(target, suffix=TEMP_SUFFIX, mode=self.file_mode)
        try:
            view = memoryview(body)
            while view:  # a short write (a file-size limit, a full disk) is not the end
                view = view[os.write(fd, view) :]
            os.utime(fd, (timestamp, timestamp))
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return temp


class _Batch:
    """Finished temporary files waiting for one syncfs and their renames. A batch goes when it
    holds BATCH_FILES files or BATCH_BYTES, when no other download is in flight, or after
    BATCH_SECONDS; one batch at a time, in a worker thread (the loop keeps downloading)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[tuple[Path, Path, asyncio.Future[None]]] = []
        self._bytes = 0
        self._in_flight = 0
        self._flushing = False
        self._timer: asyncio.TimerHandle | None = None

    def started(self) -> None:
        self._in_flight += 1

    def finished(self) -> None:
        self._in_flight -= 1
        self._maybe_flush()

    async def rename(self, temp: Path, target: Path, size: int) -> None:
        renamed: asyncio.Future[None] = self._loop.create_future()
        self._waiting.append((temp, target, renamed))
        self._bytes += size
        self._arm_timer()
        self.finished()
        try:
            await renamed
        except asyncio.CancelledError:
            # A stop: a temp still waiting is removed (one being renamed right now keeps its
            # name: its bytes were verified and synced).
            temp.unlink(missing_ok=True)
            raise

    def _arm_timer(self) -> None:
        if self._timer is None:
            self._timer = self._loop.call_later(BATCH_SECONDS, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None  # fired during a sync: the end of that sync looks again
        self._flush_now()

    def _maybe_flush(self) -> None:
        full = len(self._waiting) >= BATCH_FILES or self._bytes >= BATCH_BYTES
        if self._waiting and (full or self._in_flight == 0):
            self._flush_now()

    def _flush_now(self) -> None:
        if self._flushing or not self._waiting:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [item for item in self._waiting if not item[2].done()]  # not cancelled
        self._waiting, self._bytes, self._flushing = [], 0, True
        self._loop.create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[Path, Path, asyncio.Future[None]]]) -> None:
        moves = [(temp, target) for temp, target, _ in batch]
        try:
            outcomes = await self._loop.run_in_executor(None, rename_durably, moves)
        except Exception as exc:  # every waiter hears of it
            outcomes = [OSError(f"could not make the files durable: {exc}")] * len(batch)
        finally:
            self._flushing = False
        for (_, _, renamed), outcome in zip(batch, outcomes, strict=True):
            if renamed.done():
                continue
            if outcome is None:
                renamed.set_result(None)
            else:
                renamed.set_exception(outcome)
        # What finished during this sync: it goes now if its batch is due, else on its timer.
        self._maybe_flush()
        if self._waiting:
            self._arm_timer()


def _chain(task: asyncio.Task[int], future: Future[int], loop: asyncio.AbstractEventLoop) -> None:
    """`future` ends as `task` does; cancelling `future` (from any thread) cancels `task`."""

    def task_done(_: asyncio.Task[int]) -> None:
        try:
            if task.cancelled():
                future.cancel()
            elif (error := task.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(task.result())
        except InvalidStateError:  # cancelled from the sync's thread meanwhile
            pass

    task.add_done_callback(task_done)
    future.add_done_callback(
        lambda done: loop.call_soon_threadsafe(task.cancel) if done.cancelled() else None
    )
