from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from data_platform.s3sync.hashcache import RACY_WINDOW_NS, HashCache
from data_platform.s3sync.hashing import Digests


def old_file(path: Path, content: bytes) -> os.stat_result:
    path.write_bytes(content)
    then = time.time() - 3600
    os.utime(path, (then, then))
    return path.stat()


def test_round_trip_through_disk(tmp_path: Path) -> None:
    stat = old_file(tmp_path / "a", b"abc")
    cache = HashCache.for_directory(tmp_path, tmp_path / "cache")
    cache.store("a", stat, Digests("m", {5: "e-1"}), time.time_ns())
    cache.save()
    again = HashCache.for_directory(tmp_path, tmp_path / "cache")
    assert again.lookup("a", stat, [5]) == Digests("m", {5: "e-1"})
    assert again.lookup("a", stat, [6]) is None  # that part size was never computed


def test_same_size_rewrite_with_old_mtime_misses(tmp_path: Path) -> None:
    path = tmp_path / "a"
    stat = old_file(path, b"abc")
    cache = HashCache(None)
    cache.store("a", stat, Digests("m"), time.time_ns())
    time.sleep(0.01)
    path.write_bytes(b"xyz")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # mtime restored, ctime not
    assert cache.lookup("a", path.stat(), []) is None


def test_recently_modified_files_are_not_remembered(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"abc")
    cache = HashCache(None)
    cache.store("a", path.stat(), Digests("m"), path.stat().st_mtime_ns + RACY_WINDOW_NS // 2)
    assert cache.lookup("a", path.stat(), []) is None


def test_corrupt_cache_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = HashCache.for_directory(tmp_path, tmp_path / "cache")
    assert cache.path is not None
    cache.path.parent.mkdir(parents=True)
    cache.path.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        reloaded = HashCache.for_directory(tmp_path, tmp_path / "cache")
    assert "ignoring unreadable hash cache" in caplog.text
    assert reloaded.lookup("a", old_file(tmp_path / "a", b"x"), []) is None


def test_retain_only_forgets_deleted_files(tmp_path: Path) -> None:
    stat = old_file(tmp_path / "a", b"abc")
    cache = HashCache(None)
    cache.store("a", stat, Digests("m"), time.time_ns())
    cache.retain_only({"b"})
    assert cache.lookup("a", stat, []) is None
