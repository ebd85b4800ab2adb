"""A throwaway Postgres cluster and S3 API server for the demo, the tests and the benchmarks.

Postgres comes from the system's own `initdb`/`pg_ctl` (about a second to start); as root they run
through `runuser -u postgres --` because Postgres refuses to run as root. Every connection, TCP on
127.0.0.1 or the Unix socket in the private data folder, needs a password generated per cluster
(scram-sha-256): on a shared machine another local user cannot get in. The S3 API is moto's
server over real HTTP on 127.0.0.1 (it serves STS too). Both run in their own process groups and
are stopped, and their files removed, by `stop()`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them, e.g. "
    "`apt-get install postgresql` (Debian/Ubuntu), `dnf install postgresql-server` (Fedora) or "
    "`brew install postgresql@16` (macOS), or point the tests at a running server with "
    "DATA_PLATFORM_TEST_PG_URL=postgresql://user@host:port/postgres."
)


class DevStackError(RuntimeError):
    """A dev-stack service could not be started; the message says what to install or check."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_postgres_bindir() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    for bindir in sorted(candidates, key=_version_of, reverse=True):
        if (Path(bindir) / "initdb").exists() and (Path(bindir) / "pg_ctl").exists():
            return Path(bindir)
    raise DevStackError(POSTGRES_INSTALL_HINT)


def _version_of(bindir: str) -> tuple[int, ...]:
    digits = "".join(ch if ch.isdigit() else " " for ch in bindir).split()
    return tuple(int(d) for d in digits)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("runuser"):
        raise DevStackError("running as root needs `runuser` (util-linux) to start Postgres")
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DevStackError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


@dataclass
class PostgresServer:
    """A running throwaway cluster; `url` is its `postgres` database, password included."""

    root: Path
    port: int
    bindir: Path
    password: str = field(repr=False)
    url: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        pg_ctl = str(self.bindir / "pg_ctl")
        datadir = str(self.root / "data")
        with contextlib.suppress(DevStackError):
            _run(
                _as_postgres_user([pg_ctl, "-D", datadir, "-m", "fast", "-w", "stop"]),
                "pg_ctl stop",
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(port: int | None = None) -> PostgresServer:
    """initdb + pg_ctl start a cluster on 127.0.0.1 in a fresh temporary folder."""
    bindir = find_postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="data-platform-pg-"))
    if os.geteuid() == 0:
        try:
            shutil.chown(root, user="postgres", group="postgres")
        except LookupError:
            shutil.rmtree(root, ignore_errors=True)
            raise DevStackError(
                "running as root needs a `postgres` system user to own the throwaway cluster; "
                "it comes with the postgresql package. " + POSTGRES_INSTALL_HINT
            ) from None
    server = PostgresServer(
        root=root, port=port or free_port(), bindir=bindir, password=secrets.token_urlsafe(24)
    )
    datadir = str(root / "data")
    try:
        password_file = _private_file(root / "password", server.password)
        _run(
            _as_postgres_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    datadir,
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            "initdb",
        )
        password_file.unlink()
        # Durability is pointless for a throwaway cluster; skipping fsync makes tests faster.
        options = (
            f"-p {server.port} -c listen_addresses=127.0.0.1 -k {datadir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            _as_postgres_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    datadir,
                    "-l",
                    str(root / "postgres.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            "pg_ctl start",
        )
    except BaseException:
        server.stop()
        raise
    return server


def _private_file(path: Path, content: str) -> Path:
    """A 0600 file the Postgres processes can read (owned by `postgres` when we are root)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres", group="postgres")
    return path


@dataclass
class S3Server:
    """A moto server (S3, STS, ...) over HTTP on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    endpoint_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


def start_s3_server(port: int | None = None, timeout: float = 30.0) -> S3Server:
    """Start `python -m moto.server` in its own process group and wait until it answers."""
    port = port or free_port()
    log_fd, log_name = tempfile.mkstemp(prefix="data-platform-moto-", suffix=".log")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(log_fd)
    server = S3Server(process=process, port=port, log_path=Path(log_name))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.log_path.read_text(errors="replace")[-2000:]
            server.stop()
            raise DevStackError(
                "moto server exited at start; is moto[server] installed (`uv sync`)?\n" + output
            )
        try:
            with urllib.request.urlopen(server.endpoint_url + "/moto-api/", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise DevStackError(f"moto server did not answer on {server.endpoint_url} within {timeout}s")


@contextlib.contextmanager
def running_stack() -> Iterator[tuple[PostgresServer, S3Server]]:
    """Both services for the length of a `with` block."""
    postgres = start_postgres()
    try:
        s3 = start_s3_server()
        try:
            yield postgres, s3
        finally:
            s3.stop()
    finally:
        postgres.stop()


def create_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url`; returns its URL."""
    from psycopg2 import sql

    from data_platform.core.postgres import PostgresSettings, connect

    admin = PostgresSettings.from_url(admin_url)
    conn = connect(admin)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
    finally:
        conn.close()
    return admin.with_database(name).url(with_password=True)


def stack_environment(
    admin_url: str,
    s3_endpoint: str,
    workdir: Path,
    dagster_yaml: Path,
    databases: tuple[str, str] = ("platform", "dagster"),
    raw_url: str = "s3://data-platform-demo/raw",
) -> dict[str, str]:
    """Databases for the platform and the Dagster instance, a DAGSTER_HOME, and the variables
    that point at them."""
    from data_platform.core.postgres import PostgresSettings

    platform_url = create_database(admin_url, databases[0])
    instance = PostgresSettings.from_url(create_database(admin_url, databases[1]))
    dagster_home = workdir / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(dagster_yaml, dagster_home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": instance.host,
        "DAGSTER_PG_PORT": str(instance.port),
        "DAGSTER_PG_DB": instance.dbname,
        "DAGSTER_PG_USER": instance.user,
        "DAGSTER_PG_PASSWORD": instance.password or "",
        "DATA_PLATFORM_PG_URL": platform_url,
        "DATA_PLATFORM_RAW_URL": raw_url,
        "DATA_PLATFORM_TIERS_URL": "s3://data-platform-demo/tiers/lake",
        "DATA_PLATFORM_CACHE_DIR": str(workdir / "cache"),
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
