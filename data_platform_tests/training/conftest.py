"""Training fixtures: a sample store on a folder or a fresh bucket, and a request-counting proxy
in front of the S3 server (what the server received, not what the client meant to send)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from data_platform.training import LocalStorageBackend, S3StorageBackend
from data_platform_tests.s3_proxy import CountingProxy


@pytest.fixture
def counting_proxy(s3_endpoint: str) -> Iterator[CountingProxy]:
    proxy = CountingProxy(s3_endpoint)
    yield proxy
    proxy.close()


@pytest.fixture(params=["local", "s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> LocalStorageBackend | S3StorageBackend:
    """The same tests on a local folder and on a fresh bucket of the S3 server."""
    if request.param == "local":
        return LocalStorageBackend(tmp_path / "training")
    s3_client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("bucket")
    return S3StorageBackend(bucket, "training/", client=s3_client)
