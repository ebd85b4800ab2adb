"""Downloads through a real proxy that cuts or corrupts bodies: resumed, verified, never renamed
into place unverified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data_platform.s3sync import SyncOptions, download_prefix, upload_directory
from data_platform.s3sync.hashing import MIB
from data_platform_tests.faulty_proxy import Faults, FaultyProxy
from data_platform_tests.s3sync.conftest import (
    SMALL_MULTIPART,
    read_tree,
    s3_client_for,
    write_tree,
)

FILES = {"big.bin": os.urandom(11 * MIB + 7), "small.txt": os.urandom(300_000)}


@pytest.fixture
def uploaded(tmp_path: Path, s3_endpoint: str, bucket: str) -> str:
    write_tree(tmp_path / "src", FILES)
    options = SyncOptions(policy=SMALL_MULTIPART, cache_dir=None, progress_enabled=False)
    report = upload_directory(s3_client_for(s3_endpoint), tmp_path / "src", bucket, "d", options)
    assert report.ok
    return bucket


def _download(endpoint_url: str, bucket: str, target: Path):
    options = SyncOptions(policy=SMALL_MULTIPART, workers=2, progress_enabled=False)
    return download_prefix(s3_client_for(endpoint_url), bucket, "d", target, options)


def test_bodies_cut_mid_stream_are_resumed(tmp_path: Path, s3_endpoint: str, uploaded: str) -> None:
    faults = Faults(cut_bodies=3)  # the small file's body and two of the big file's ranges
    with FaultyProxy(s3_endpoint, faults) as proxy:
        report = _download(proxy.endpoint_url, uploaded, tmp_path / "dst")
    assert faults.bodies_cut == 3
    assert report.failures == []
    assert read_tree(tmp_path / "dst") == FILES


def test_corrupted_bodies_are_never_renamed_into_place(
    tmp_path: Path, s3_endpoint: str, uploaded: str
) -> None:
    target = tmp_path / "dst"
    target.mkdir()
    (target / "small.txt").write_bytes(b"x" * len(FILES["small.txt"]))  # same size, old bytes
    with FaultyProxy(s3_endpoint, Faults(corrupt_bodies=True)) as proxy:
        report = _download(proxy.endpoint_url, uploaded, target)
    assert sorted(f.name for f in report.failures) == ["big.bin", "small.txt"]
    assert all("do not match" in f.reason for f in report.failures)
    assert sorted(os.listdir(target)) == ["small.txt"]  # no temporary file, no big.bin
    assert (target / "small.txt").read_bytes() == b"x" * len(FILES["small.txt"])


def test_a_verified_download_is_a_no_op_next_time(
    tmp_path: Path, s3_endpoint: str, uploaded: str
) -> None:
    first = _download(s3_endpoint, uploaded, tmp_path / "dst")
    assert first.ok and first.transferred == 2
    again = _download(s3_endpoint, uploaded, tmp_path / "dst")
    assert again.ok and (again.transferred, again.skipped) == (0, 2)
    assert read_tree(tmp_path / "dst") == FILES
