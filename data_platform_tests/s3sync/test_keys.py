from __future__ import annotations

from pathlib import Path

import pytest

from data_platform.s3sync.keys import (
    UnsafeKeyError,
    is_folder_marker,
    key_for,
    local_path_for,
    normalize_prefix,
    relative_path_for,
)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("data", "data/"), ("data/", "data/"), ("/data/x/", "data/x/"), ("", ""), ("/", "")],
)
def test_normalize_prefix(prefix: str, expected: str) -> None:
    assert normalize_prefix(prefix) == expected


def test_key_for_uses_posix_separators() -> None:
    assert key_for("raw", "year=2024/month=05/a.csv") == "raw/year=2024/month=05/a.csv"
    assert key_for("", "한글/메모.txt") == "한글/메모.txt"


def test_relative_path_round_trip() -> None:
    assert relative_path_for("raw/", key_for("raw", "a/b.csv")) == "a/b.csv"


@pytest.mark.parametrize(
    "key", ["raw/../x", "raw/a/../../x", "raw//etc/passwd", "raw/./a", "raw/a\x00b", "other/a"]
)
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(UnsafeKeyError):
        local_path_for(tmp_path, "raw", key)


def test_local_path_stays_inside(tmp_path: Path) -> None:
    assert local_path_for(tmp_path, "raw", "raw/a/b.csv") == tmp_path / "a" / "b.csv"


def test_folder_markers() -> None:
    assert is_folder_marker("raw/a/")
    assert not is_folder_marker("raw/a")
