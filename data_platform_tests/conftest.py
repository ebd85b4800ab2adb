"""Real services for the whole suite, started once per session.

Postgres: DATA_PLATFORM_TEST_PG_URL (an admin URL of a running server) if set, otherwise a
throwaway cluster from the system's initdb/pg_ctl. S3: DATA_PLATFORM_TEST_S3_ENDPOINT if set,
otherwise SeaweedFS (devstack) over HTTP, checking credentials; `moto_endpoint` only for the AWS
APIs SeaweedFS lacks (STS, public-access blocks, lifecycle rules). Every test that asks gets its
own database and bucket.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from data_platform import devstack

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every cache the code writes (hash cache, AWS tokens) out of the user's home."""
    path = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("DATA_PLATFORM_CACHE_DIR")
    os.environ["DATA_PLATFORM_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("DATA_PLATFORM_CACHE_DIR", None)
    else:
        os.environ["DATA_PLATFORM_CACHE_DIR"] = previous


def _given_or_started(variable: str, start: Callable[[], Any], address: str) -> Iterator[str]:
    """The server named by environment `variable`, else one `start()`ed for the session (its
    `address` attribute) and stopped after it; a server that cannot start stops the run."""
    given = os.environ.get(variable)
    if given:
        yield given
        return
    try:
        server = start()
    except devstack.DevStackError as exc:
        pytest.exit(str(exc), returncode=2)
    try:
        yield getattr(server, address)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    yield from _given_or_started("DATA_PLATFORM_TEST_PG_URL", devstack.start_postgres, "url")


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh empty database, dropped after the test."""
    from psycopg2 import sql

    from data_platform.core.postgres import connect

    name = f"dp_test_{uuid.uuid4().hex[:12]}"
    conn = connect(pg_server_url)
    conn.autocommit = True
    try:
        yield devstack.create_database(pg_server_url, name)
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    yield from _given_or_started(
        "DATA_PLATFORM_TEST_S3_ENDPOINT", devstack.start_s3_server, "endpoint_url"
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server, only for the AWS APIs a real object store lacks: STS (MFA, AssumeRole),
    public-access blocks and lifecycle rules."""
    server = devstack.start_moto_server()
    try:
        yield server.endpoint_url
    finally:
        server.stop()


def make_s3_client(endpoint: str):
    """A boto3 S3 client on `endpoint` with the dummy test credentials."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=32, retries={"max_attempts": 3}),
    )


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str):
    return make_s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto_bucket(moto_endpoint: str) -> str:
    """A bucket in moto: for STS credentials, and for objects a real server refuses to store
    (keys with `..`, a wrong stored checksum) that a download must still survive."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    make_s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Dummy credentials and empty AWS config files, so no real configuration leaks in."""
    config = tmp_path / "aws-config"
    credentials = tmp_path / "aws-credentials"
    config.write_text("")
    credentials.write_text("")
    env = {
        **DUMMY_AWS,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "DATA_PLATFORM_AWS_CACHE_DIR": str(tmp_path / "aws-cache"),
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
