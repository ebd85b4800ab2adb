"""Remembers file digests by stat signature, so a no-op re-sync does not re-read every file.

An entry is used only while size, mtime, ctime and inode are all unchanged (ctime cannot be set
back by tools that preserve mtime). Files modified within RACY_WINDOW_NS of being hashed are not
remembered: a second write inside the same timestamp tick would go unnoticed (git's "racy" case).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from data_platform.core.files import write_atomically
from data_platform.s3sync.hashing import Digests

log = logging.getLogger(__name__)

RACY_WINDOW_NS = 2_000_000_000
_FORMAT = 1


def file_signature(stat: os.stat_result) -> list[int]:
    """What must stay equal for a file to count as unchanged (ctime catches restored mtimes)."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


class HashCache:
    """Digests of the files of one local directory, keyed by relative POSIX path."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list] = {}
        self._lock = threading.Lock()
        self._dirty = False
        if path is not None:
            self._load(path)

    @classmethod
    def for_directory(cls, local_dir: Path, cache_dir: Path | None) -> HashCache:
        """The cache file of `local_dir` inside `cache_dir`; a memory-only cache if None."""
        if cache_dir is None:
            return cls(None)
        name = hashlib.sha256(os.path.realpath(local_dir).encode()).hexdigest()[:32]
        return cls(cache_dir / "s3sync" / f"{name}.json")

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            if data.get("format") == _FORMAT:
                self._entries = data["entries"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            log.warning("ignoring unreadable hash cache %s: %s", path, exc)

    def lookup(self, relative: str, stat: os.stat_result, part_sizes: list[int]) -> Digests | None:
        """Cached digests if the file is unchanged and every wanted part size is known."""
        with self._lock:
            entry = self._entries.get(relative)
        if entry is None or entry[0] != file_signature(stat):
            return None
        multipart = {int(size): etag for size, etag in entry[2].items()}
        if any(size not in multipart for size in part_sizes):
            return None
        return Digests(entry[1], multipart)

    def store(
        self, relative: str, stat: os.stat_result, digests: Digests, hashed_at_ns: int
    ) -> None:
        """Remember digests computed from a read that started at `hashed_at_ns` (time.time_ns)."""
        if stat.st_mtime_ns >= hashed_at_ns - RACY_WINDOW_NS:
            return
        signature = file_signature(stat)
        with self._lock:
            entry = self._entries.get(relative)
            known = entry[2] if entry and entry[0] == signature and entry[1] == digests.md5 else {}
            merged = {**known, **{str(k): v for k, v in digests.multipart.items()}}
            self._entries[relative] = [signature, digests.md5, merged]
            self._dirty = True

    def retain_only(self, relatives: set[str]) -> None:
        """Forget files that no longer exist (after a complete scan of the directory)."""
        with self._lock:
            gone = [name for name in self._entries if name not in relatives]
            for name in gone:
                del self._entries[name]
            self._dirty = self._dirty or bool(gone)

    def save(self) -> None:
        """Write the cache atomically; a failure only costs re-hashing next time."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            payload = json.dumps({"format": _FORMAT, "entries": self._entries})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, payload.encode())
        except OSError as exc:
            log.warning("could not save hash cache %s: %s", self.path, exc)
        self._dirty = False


def now_ns() -> int:
    return time.time_ns()
