"""Multipart-sized files against the moto server (parts of 5 MiB: the smallest S3 accepts)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from data_platform.s3sync import PartPolicy, SyncOptions, download_prefix, upload_directory
from data_platform.s3sync.hashing import MIB, compute_digests
from data_platform_tests.s3sync.conftest import (
    SMALL_MULTIPART,
    CountingClient,
    read_tree,
    rewrite_keeping_times,
    write_tree,
)


@pytest.fixture
def big_tree(tmp_path: Path) -> dict[str, bytes]:
    files = {"big/blob.bin": os.urandom(11 * MIB + 5), "small.txt": b"small"}
    write_tree(tmp_path / "src", files)
    return files


def multipart_options(tmp_path: Path, policy: PartPolicy = SMALL_MULTIPART) -> SyncOptions:
    return SyncOptions(policy=policy, cache_dir=tmp_path / "cache", workers=4)


def test_round_trip_and_no_op_resync(
    tmp_path: Path, counting: CountingClient, bucket: str, big_tree: dict[str, bytes]
) -> None:
    client, options = counting.client, multipart_options(tmp_path)
    report = upload_directory(client, tmp_path / "src", bucket, "mp", options)
    assert (report.transferred, report.failed) == (2, 0)
    assert counting.calls["UploadPart"] == 3

    head = client.head_object(Bucket=bucket, Key="mp/big/blob.bin")
    local = compute_digests(tmp_path / "src" / "big/blob.bin", [5 * MIB])
    assert head["ETag"].strip('"') == local.multipart[5 * MIB]
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"]["md5"] == hashlib.md5(big_tree["big/blob.bin"]).hexdigest()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    counting.calls.clear()
    again = upload_directory(client, tmp_path / "src", bucket, "mp", options)
    assert (again.transferred, again.skipped) == (0, 2)
    assert dict(counting.calls) == {"ListObjectsV2": 1}

    down = download_prefix(client, bucket, "mp", tmp_path / "dst", options)
    assert (down.transferred, down.failed) == (2, 0)
    assert read_tree(tmp_path / "dst") == big_tree

    counting.calls.clear()
    down_again = download_prefix(client, bucket, "mp", tmp_path / "dst", options)
    assert (down_again.transferred, down_again.skipped) == (0, 2)
    assert dict(counting.calls) == {"ListObjectsV2": 1}


def test_other_part_size_falls_back_to_stored_md5(
    tmp_path: Path, counting: CountingClient, bucket: str, big_tree: dict[str, bytes]
) -> None:
    seven = PartPolicy(threshold=5 * MIB, part_size=7 * MIB)  # 11 MiB -> 2 parts of 7+4
    upload_directory(
        counting.client, tmp_path / "src", bucket, "mp", multipart_options(tmp_path, seven)
    )
    counting.calls.clear()

    # Our 5 MiB parts give 3 parts; 8 MiB (aws-cli's default) gives 2 but another ETag. Neither
    # reproduces the 7 MiB ETag, so the check reads the md5 our uploader stored as metadata.
    no_cache = SyncOptions(policy=SMALL_MULTIPART, cache_dir=None, workers=4)
    report = upload_directory(counting.client, tmp_path / "src", bucket, "mp", no_cache)

    assert (report.transferred, report.skipped) == (0, 2)
    assert dict(counting.calls) == {"ListObjectsV2": 1, "HeadObject": 1}


def test_changed_multipart_file_is_uploaded_again(
    tmp_path: Path, s3_client, bucket: str, big_tree: dict[str, bytes]
) -> None:
    options = multipart_options(tmp_path)
    upload_directory(s3_client, tmp_path / "src", bucket, "mp", options)
    changed = bytearray(big_tree["big/blob.bin"])
    changed[6 * MIB] ^= 0xFF  # one byte in the middle part
    rewrite_keeping_times(tmp_path / "src" / "big/blob.bin", bytes(changed))

    report = upload_directory(s3_client, tmp_path / "src", bucket, "mp", options)

    assert (report.transferred, report.skipped) == (1, 1)
    body = s3_client.get_object(Bucket=bucket, Key="mp/big/blob.bin")["Body"].read()
    assert body == bytes(changed)
