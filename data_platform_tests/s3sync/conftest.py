"""Helpers for the s3sync tests: a client that counts its API calls, and sample trees."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_platform.s3sync import PartPolicy, SyncOptions
from data_platform_tests.faulty_proxy import Faults, FaultyProxy

# S3 (and SeaweedFS) refuse parts under 5 MiB, so the smallest real multipart setting is 5 MiB.
SMALL_MULTIPART = PartPolicy(threshold=5 * 2**20, part_size=5 * 2**20)

SAMPLE_TREE = {
    "readme.txt": b"hello\n",
    "year=2024/month=05/region=seoul/prices.csv": b"item,price\nbolt,120\n" * 50,
    "year=2024/month=06/region=busan/prices.csv": b"item,price\nbolt,125\n" * 50,
    "empty.bin": b"",
    "한글 폴더/메모.txt": "강남구\n".encode(),
}


class CountingClient:
    """A client whose requests go through a proxy that tallies the S3 operations the server
    received (the sync talks through obstore; `client` carries endpoint and credentials)."""

    def __init__(self, proxy: FaultyProxy) -> None:
        self.client = s3_client_for(proxy.endpoint_url)
        self.calls: Counter[str] = proxy.faults.calls


def s3_client_for(endpoint_url: str):
    """A client of the test server or of a proxy in front of it."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=32),
    )


@pytest.fixture
def counting(s3_endpoint: str) -> Iterator[CountingClient]:
    with FaultyProxy(s3_endpoint, Faults()) as proxy:
        yield CountingClient(proxy)


@pytest.fixture
def options(tmp_path: Path) -> SyncOptions:
    return SyncOptions(cache_dir=tmp_path / "cache", workers=4, progress_enabled=False)


def write_tree(root: Path, files: dict[str, bytes], age_seconds: int = 3600) -> None:
    """Write files dated `age_seconds` ago (older than the hash cache's racy window)."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        then = path.stat().st_mtime - age_seconds
        os.utime(path, (then, then))


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def bucket_contents(client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", ())
    ]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def rewrite_keeping_times(path: Path, content: bytes) -> None:
    """Change content but keep size and mtime, as `cp -p`/rsync -t/untar would."""
    before = path.stat()
    assert len(content) == before.st_size
    path.write_bytes(content)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
