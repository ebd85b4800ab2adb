"""Downloads through a real proxy that cuts or corrupts bodies: resumed, verified, never renamed
into place unverified."""

from __future__ import annotations

import base64
import os
import zlib
from pathlib import Path

import pytest

from data_platform.s3sync import SyncOptions, download_prefix, upload_directory
from data_platform.s3sync.hashing import MIB
from data_platform_tests.s3sync.conftest import (
    SMALL_MULTIPART,
    read_tree,
    s3_client_for,
    write_tree,
)
from data_platform_tests.s3sync.faulty_proxy import Faults, FaultyProxy

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


def test_a_body_that_contradicts_its_stored_crc32_is_refused(
    tmp_path: Path, moto_endpoint: str, moto_bucket: str
) -> None:
    """Whole-object downloads are checked against the CRC32 stored with the object (our uploads
    store one) instead of hashing MD5: a wrong one must fail the file, not pass it. (SeaweedFS
    refuses to store a wrong checksum; moto keeps it.)"""
    s3_endpoint, bucket = moto_endpoint, moto_bucket
    client = s3_client_for(s3_endpoint)
    data = os.urandom(100_000)
    wrong = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
    client.put_object(
        Bucket=bucket, Key="d/bad.bin", Body=data, ChecksumCRC32=wrong, ChecksumAlgorithm="CRC32"
    )
    report = _download(s3_endpoint, bucket, tmp_path / "dst")
    assert [(f.name, "CRC32" in f.reason) for f in report.failures] == [("bad.bin", True)]
    assert not (tmp_path / "dst").exists() or os.listdir(tmp_path / "dst") == []


def test_a_crc32_checked_download_needs_no_hashing_to_be_a_no_op_next_time(
    tmp_path: Path, s3_endpoint: str, uploaded: str
) -> None:
    client = s3_client_for(s3_endpoint)
    head = client.head_object(Bucket=uploaded, Key="d/small.txt", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"]  # stored by our uploader
    first = _download(s3_endpoint, uploaded, tmp_path / "dst")
    assert first.ok and first.transferred == 2
    again = _download(s3_endpoint, uploaded, tmp_path / "dst")
    assert again.ok and (again.transferred, again.skipped) == (0, 2)
    assert read_tree(tmp_path / "dst") == FILES
