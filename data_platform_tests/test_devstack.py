import os
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from data_platform import devstack


def _process_alive(pid: int) -> bool:
    """Running and not a zombie (a container's PID 1 may never reap the detached postmaster)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def test_postgres_starts_answers_and_stops_without_leftovers() -> None:
    server = devstack.start_postgres()
    try:
        with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
            cur.execute("SHOW fsync")
            assert cur.fetchone()[0] == "off"
        pid = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
        assert _process_alive(pid)
    finally:
        server.stop()
    assert not server.root.exists()
    assert not _process_alive(pid)


def test_postgres_refuses_connections_without_the_generated_password() -> None:
    server = devstack.start_postgres()
    try:
        assert "password=" not in repr(server) and server.password not in repr(server)
        socket_dir = server.root / "data"
        for host in ("127.0.0.1", str(socket_dir)):
            with pytest.raises(psycopg2.OperationalError, match="password"):
                psycopg2.connect(host=host, port=server.port, user="postgres", dbname="postgres")
            with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
                psycopg2.connect(
                    host=host, port=server.port, user="postgres", dbname="postgres", password="x"
                )
        rules = (socket_dir / "pg_hba.conf").read_text().splitlines()
        methods = {line.split()[-1] for line in rules if line.strip() and line[0] != "#"}
        assert methods == {"scram-sha-256"}
    finally:
        server.stop()


def test_s3_server_checks_credentials_and_stops_without_leftovers() -> None:
    import boto3
    from botocore.exceptions import ClientError

    def client(secret: str):
        return boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=devstack.S3_ACCESS_KEY,
            aws_secret_access_key=secret,
        )

    server = devstack.start_s3_server()
    try:
        good = client(devstack.S3_SECRET_KEY)
        good.create_bucket(Bucket="devstack-check")
        # Bucket default encryption (SSE-S3) works: the server was given its key.
        good.put_bucket_encryption(
            Bucket="devstack-check",
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        good.put_object(Bucket="devstack-check", Key="k", Body=b"x")
        assert good.head_object(Bucket="devstack-check", Key="k")["ServerSideEncryption"] == (
            "AES256"
        )
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            client("wrong").list_objects_v2(Bucket="devstack-check")
        assert all(path.exists() for path in server.sockets)
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert not server.root.exists()
    assert not any(path.exists() for path in server.sockets)
    with pytest.raises(OSError):
        urllib.request.urlopen(server.endpoint_url + "/", timeout=2)


def test_moto_server_starts_answers_and_stops() -> None:
    server = devstack.start_moto_server()
    try:
        with urllib.request.urlopen(server.endpoint_url + "/moto-api/", timeout=5) as response:
            assert response.status == 200
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert not server.log_path.exists()


def test_missing_postgres_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devstack.shutil, "which", lambda name: None)
    monkeypatch.setattr(devstack.glob, "glob", lambda pattern: [])
    with pytest.raises(devstack.DevStackError, match="apt-get install postgresql"):
        devstack.find_postgres_bindir()


def test_stack_environment_points_dagster_at_postgres(pg_server_url: str, tmp_path) -> None:
    dagster_yaml = tmp_path / "dagster.yaml"
    dagster_yaml.write_text("telemetry:\n  enabled: false\n")
    env = devstack.stack_environment(pg_server_url, "http://127.0.0.1:1", tmp_path, dagster_yaml)
    try:
        assert (tmp_path / "dagster_home" / "dagster.yaml").exists()
        with psycopg2.connect(env["DATA_PLATFORM_PG_URL"]) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone()[0] == "platform"
        assert env["DAGSTER_PG_DB"] == "dagster"
    finally:
        conn = psycopg2.connect(pg_server_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE platform WITH (FORCE)")
            cur.execute("DROP DATABASE dagster WITH (FORCE)")
        conn.close()
