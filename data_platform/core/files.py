"""Local files written whole or not at all, and read in blocks for hashing.

`atomic_file` is the one place that writes a file next to its target, fsyncs it and renames it
into place; a reader never sees a half-written file and an error (or Ctrl-C) leaves no temporary
file behind. `rename_durably` does the same for many files at once: one `syncfs()` for all of
them before their renames, where 2,000 fsyncs of 10 KB files from 16 threads cost a download
~0.5 s of 1.9 s (measured). `file_md5`/`feed_file` are the one read loop behind every digest.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

READ_BLOCK = 1024 * 1024


class AtomicFile:
    """A temporary file next to `target`; `commit()` makes it the target (once)."""

    def __init__(self, target: Path, handle: BinaryIO, temp: Path, durable: bool) -> None:
        self.target = target
        self.handle = handle
        self.temp = temp
        self.durable = durable
        self.committed = False

    def write(self, data: bytes | memoryview) -> int:
        return self.handle.write(data)

    def fileno(self) -> int:
        return self.handle.fileno()

    def commit(self) -> None:
        """fsync (when durable), close and rename over the target."""
        if self.committed:
            return
        self.handle.flush()
        if self.durable:
            os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temp, self.target)
        self.committed = True


@contextlib.contextmanager
def atomic_file(
    target: Path,
    *,
    prefix: str | None = None,
    suffix: str = ".tmp",
    mode: int | None = None,
    durable: bool = True,
) -> Iterator[AtomicFile]:
    """Write `target` through a temporary file in its folder (named `prefix...suffix`, default
    `.<name>.<random>.tmp`). The file is committed when the block ends normally unless the
    block committed it already (e.g. under a lock); on an exception it is removed.

    `mode` None keeps mkstemp's 0600 (right for secrets); pass `regular_file_mode()` for a file
    anyone may read as the umask allows. `durable=False` skips the fsync, for bulk data whose
    loss on a power cut only costs a re-download.
    """
    target = Path(target)
    fd, temp = temp_file_beside(target, prefix=prefix, suffix=suffix, mode=mode)
    try:
        out = AtomicFile(target, os.fdopen(fd, "wb", buffering=0), temp, durable)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    try:
        with out.handle:
            yield out
            out.commit()
    finally:
        if not out.committed:
            temp.unlink(missing_ok=True)


def temp_file_beside(
    target: Path, *, prefix: str | None = None, suffix: str = ".tmp", mode: int | None = None
) -> tuple[int, Path]:
    """A new file (open for writing) in `target`'s folder, named `prefix...suffix` (default
    `.<name>.<random>.tmp`), with `mode` (None: 0600)."""
    import tempfile  # not at the top: a no-op sync never writes a file (~2 ms of start-up)

    fd, temp_name = tempfile.mkstemp(
        dir=target.parent,
        prefix=prefix if prefix is not None else f".{target.name}.",
        suffix=suffix,
    )
    try:
        if mode is not None:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        os.unlink(temp_name)
        raise
    return fd, Path(temp_name)


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """All of `data` at `offset`. `os.pwrite` may write less than asked (a file-size limit, a
    disk filling up) and says so only in its return value; ignoring it leaves a hole."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def write_atomically(target: Path, data: bytes, *, mode: int | None = None) -> None:
    """The whole of `data` at `target`, or the old file untouched."""
    with atomic_file(target, mode=mode) as out:
        out.write(data)


@functools.cache
def _umask() -> int:
    # /proc tells the umask without changing it (os.umask would race with other threads).
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def regular_file_mode() -> int:
    """The permissions `open(path, "w")` would give a new file under the current umask."""
    return 0o666 & ~_umask()


def feed_file(source: Path | BinaryIO, update: Callable[[memoryview], object]) -> None:
    """Pass the bytes of a file (a path, or an open binary file from its current position) to
    `update` in blocks, e.g. a hashlib object's `update`."""
    buffer = bytearray(READ_BLOCK)
    view = memoryview(buffer)
    with (
        open(source, "rb") if isinstance(source, Path) else contextlib.nullcontext(source) as handle
    ):
        while count := handle.readinto(buffer):
            update(view[:count])


def file_md5(source: Path | BinaryIO) -> str:
    """MD5 hex of a file's bytes (S3's ETag of a single-part object)."""
    digest = hashlib.md5(usedforsecurity=False)
    feed_file(source, digest.update)
    return digest.hexdigest()


def rename_durably(moves: list[tuple[Path, Path]]) -> list[OSError | None]:
    """Rename each (temp, target) after the data of every temp is on disk, with one `syncfs()`
    of their file system (Linux) instead of an fsync each; elsewhere each temp is fsynced.
    Returns one error or None per move; a temp that could not take its name is removed."""
    errors: list[OSError | None] = [None] * len(moves)
    if moves:
        try:
            _sync_data_of([temp for temp, _ in moves])
        except OSError as exc:
            errors = [exc] * len(moves)
    for index, (temp, target) in enumerate(moves):
        try:
            if errors[index] is None:
                os.replace(temp, target)
                continue
        except OSError as exc:
            errors[index] = exc
        temp.unlink(missing_ok=True)
    return errors


def _sync_data_of(paths: list[Path]) -> None:
    syncfs = _libc_syncfs()
    if syncfs is None:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return
    import ctypes

    # One file system per call: the temps of one sync share their folder's.
    for device_path in {os.stat(path).st_dev: path for path in paths}.values():
        fd = os.open(device_path, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                number = ctypes.get_errno()
                raise OSError(number, os.strerror(number), str(device_path))
        finally:
            os.close(fd)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
