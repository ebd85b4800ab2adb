"""`ObjectStore` on a local folder: keys with "/" are subfolders, etags are MD5 like S3's.

Layout under the root: each object is a plain file at its key's path (so the folder stays usable by
other tools); `.objectstore/meta/` holds a JSON sidecar per key with its etag and metadata, tied to
the file by inode, size and mtime (a file changed behind our back gets its etag recomputed and no
metadata); `.objectstore/locks/` holds 256 lock files. Writers go temp file + fsync + rename, and
swap sidecar and file under an exclusive `flock`; readers take it shared, so threads and processes
always see matching content and metadata. Names starting with ".objectstore" are reserved.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from data_platform.core.files import (
    AtomicFile,
    atomic_file,
    file_md5,
    regular_file_mode,
    write_atomically,
)
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

RESERVED = ".objectstore"
_CHUNK = 1024 * 1024


class LocalObjectStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self._internal = self.root / RESERVED

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with self._locked(key, exclusive=False):
            try:
                raw = open(path, "rb", buffering=0)  # noqa: SIM115 - returned to the caller
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ObjectNotFound(f"no object {key!r} in {self.root}") from None
            try:
                info = self._info(key, os.fstat(raw.fileno()), raw)
            except BaseException:
                raw.close()
                raise
        return ObjectReader(raw, info)

    def download(self, key: str, path: Path) -> ObjectInfo:
        return download_to_path(self, key, path)

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with self._locked(key, exclusive=False):
            return self._info(key, self._stat(key, path), path)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        folder = prefix.rpartition("/")[0]
        if folder and any(part in ("", ".", "..") for part in folder.split("/")):
            raise ValueError(f"invalid prefix {prefix!r}: no empty, '.' or '..' segments")
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        yield from self._walk(start, f"{folder}/" if folder else "", prefix, start_after)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._locked(key, exclusive=True):
            with suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                path.unlink()
            self._sidecar(key).unlink(missing_ok=True)
        # Drop folders the delete emptied; a writer racing into one recreates it (see _temp_file).
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def put(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str:
        return self._write(key, data, metadata, condition=None)

    def put_if_absent(
        self, key: str, data: bytes | BinaryIO, metadata: Mapping[str, str] | None = None
    ) -> str:
        return self._write(key, data, metadata, condition=("absent", ""))

    def put_if_match(
        self,
        key: str,
        data: bytes | BinaryIO,
        etag: str,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        if not etag:
            raise ValueError("put_if_match needs the etag the caller last read")
        return self._write(key, data, metadata, condition=("match", strip_etag(etag)))

    def _write(
        self,
        key: str,
        data: bytes | BinaryIO,
        metadata: Mapping[str, str] | None,
        condition: tuple[str, str] | None,
    ) -> str:
        path = self._path(key)
        clean_metadata = normalize_metadata(metadata)
        digest = hashlib.md5(usedforsecurity=False)
        with ExitStack() as stack:
            out = self._temp_file(key, path, stack)
            for chunk in _chunks(data):
                digest.update(chunk)
                out.write(chunk)
            written = os.fstat(out.fileno())
            with self._locked(key, exclusive=True):
                if condition is not None:
                    self._check(key, path, *condition)
                sidecar = {
                    "key": key,
                    "etag": digest.hexdigest(),
                    "size": written.st_size,
                    "inode": written.st_ino,
                    "mtime_ns": written.st_mtime_ns,
                    "metadata": clean_metadata,
                }
                self._write_sidecar(key, sidecar)
                try:
                    out.commit()
                except IsADirectoryError:
                    self._sidecar(key).unlink(missing_ok=True)
                    raise ObjectStoreError(
                        f"cannot store {key!r} in {self.root}: a folder has that name "
                        "(a local store cannot hold both 'a' and 'a/b')"
                    ) from None
        return digest.hexdigest()

    def _check(self, key: str, path: Path, kind: str, expected_etag: str) -> None:
        try:
            current = self._info(key, self._stat(key, path), path).etag
        except ObjectNotFound:
            current = None
        if kind == "absent" and current is not None:
            raise PreconditionFailed(f"{key!r} already exists in {self.root}")
        if kind == "match" and current != expected_etag:
            state = "no longer exists" if current is None else "changed"
            raise PreconditionFailed(
                f"{key!r} in {self.root} {state} since etag {expected_etag}; read it and retry"
            )

    def _temp_file(self, key: str, path: Path, stack: ExitStack) -> AtomicFile:
        """A temporary file next to `path` (a reserved name listings skip), open in `stack`."""
        for attempt in range(5):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                return stack.enter_context(
                    atomic_file(
                        path, prefix=f"{RESERVED}-tmp-", suffix="", mode=regular_file_mode()
                    )
                )
            except (FileExistsError, NotADirectoryError):
                raise ObjectStoreError(
                    f"cannot store {key!r} in {self.root}: a parent of it is an object, not a "
                    "folder (a local store cannot hold both 'a' and 'a/b')"
                ) from None
            except FileNotFoundError:
                if attempt == 4:  # a concurrent delete kept removing the emptied folder
                    raise
        raise AssertionError("unreachable")

    def _info(self, key: str, st: os.stat_result, source: Path | Any) -> ObjectInfo:
        """Etag and metadata from the sidecar if it describes this very file, else recomputed."""
        sidecar = self._read_sidecar(key)
        modified = datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sidecar is not None and identity == tuple(
            sidecar.get(name) for name in ("inode", "size", "mtime_ns")
        ):
            metadata = dict(sidecar.get("metadata", {}))
            return ObjectInfo(key, st.st_size, sidecar["etag"], modified, metadata)
        return ObjectInfo(key, st.st_size, _md5_of(source), modified, {})

    def _stat(self, key: str, path: Path) -> os.stat_result:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r} in {self.root}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"no object {key!r} in {self.root} ({path} is not a file)")
        return st

    def _walk(
        self, folder: Path, rel: str, prefix: str, start_after: str | None
    ) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(folder) as scan:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in scan]
        except (FileNotFoundError, NotADirectoryError):
            return
        # A folder sorts as "name/": then every key below it lands in global key order.
        ordered = sorted(
            (rel + name + ("/" if is_dir else ""), name, is_dir)
            for name, is_dir in entries
            if not name.startswith(RESERVED)
        )
        for key, name, is_dir in ordered:
            if is_dir:
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    continue
                below_start = start_after is not None and key <= start_after
                if below_start and not start_after.startswith(key):
                    continue  # every key below this folder sorts before start_after
                yield from self._walk(folder / name, key, prefix, start_after)
            elif key.startswith(prefix) and (start_after is None or key > start_after):
                try:
                    info = self.head(key)
                except ObjectNotFound:
                    continue  # deleted (or not a regular file) since the scan
                yield ObjectInfo(info.key, info.size, info.etag, info.last_modified, {})

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not key:
            raise ValueError(f"invalid object key {key!r}: use a non-empty string")
        parts = key.split("/")
        if "\0" in key or any(p in ("", ".", "..") or p.startswith(RESERVED) for p in parts):
            raise ValueError(
                f"invalid object key {key!r}: no leading/trailing/double '/', no '.' or '..' "
                f"segments, no segment starting with {RESERVED!r}"
            )
        return self.root.joinpath(*parts)

    def _sidecar(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return self._internal / "meta" / digest[:2] / f"{digest}.json"

    def _read_sidecar(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._sidecar(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _write_sidecar(self, key: str, content: dict[str, Any]) -> None:
        target = self._sidecar(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(content, ensure_ascii=False)
        write_atomically(target, text.encode("utf-8"), mode=regular_file_mode())

    @contextmanager
    def _locked(self, key: str, *, exclusive: bool) -> Iterator[None]:
        """flock one of 256 lock files: serialises threads (one fd each) and processes."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        lock_path = self._internal / "locks" / f"{digest[:2]}.lock"
        try:
            fd: int | None = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            fd = None
            if exclusive or self.root.is_dir():
                lock_path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        if fd is None:  # nothing stored yet: nothing to read consistently
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)


def _chunks(data: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    if isinstance(data, str) or not hasattr(data, "read"):
        raise TypeError(f"object data must be bytes or a binary file, not {type(data).__name__}")
    while chunk := data.read(_CHUNK):
        yield chunk


def _md5_of(source: Path | Any) -> str:
    if isinstance(source, Path):
        return file_md5(source)
    position = source.tell()  # an open file: hash it, then rewind for the caller
    source.seek(0)
    try:
        return file_md5(source)
    finally:
        source.seek(position)
