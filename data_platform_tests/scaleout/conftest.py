"""A Redis broker, a Postgres-backed Dagster instance and Celery workers, as on separate machines:
every process shares only Postgres, the S3 server and the broker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from data_platform import devstack
from data_platform.devstack_cli import REPO_ROOT, start_dagit, stop_process_group
from data_platform_tests.dagit_api import start_cli, wait_for

REDIS_HINT = "`apt-get install redis-server` (the test starts its own on a free port)"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip(f"the Celery test needs a local Redis broker: {REDIS_HINT}")
    port = devstack.free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        wait_for("redis-server", lambda: _pings(client), 30, every=0.2)
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def instance_env(
    pg_server_url: str, s3_endpoint: str, bucket: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """Fresh platform and instance databases and a DAGSTER_HOME using the repo's dagster.yaml."""
    from psycopg2 import sql

    from data_platform.core.postgres import connect

    suffix = uuid.uuid4().hex[:10]
    names = (f"dp_celery_platform_{suffix}", f"dp_celery_dagster_{suffix}")
    yield devstack.stack_environment(
        pg_server_url,
        s3_endpoint,
        tmp_path,
        REPO_ROOT / "dagster.yaml",
        databases=names,
        raw_url=f"s3://{bucket}/raw",
    )
    conn = connect(pg_server_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    finally:
        conn.close()


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """kill -9 the worker and its pool process at once, as when its machine dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class Workers:
    started: list[Worker] = field(default_factory=list)

    def by_hostname(self, hostname: str) -> Worker:
        return next(w for w in self.started if hostname.startswith(w.name.split("@")[0] + "@"))


@pytest.fixture
def start_workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str], int], Workers]]:
    workers = Workers()

    def start(env: dict[str, str], count: int) -> Workers:
        for index in range(count):
            name = f"worker-{index}@%h"
            log = tmp_path / f"worker-{index}.log"
            process = start_cli(log, env, "celery", "worker", "--name", name, "--concurrency", "1")
            workers.started.append(Worker(name, process, log))
        for worker in workers.started:
            wait_for(f"{worker.name} to connect", lambda w=worker: _ready(w), 120)
        return workers

    yield start
    for worker in workers.started:
        stop_process_group(worker.process, timeout=20)


def _ready(worker: Worker) -> bool:
    if worker.process.poll() is not None:
        raise AssertionError(f"{worker.name} exited:\n{worker.log.read_text()[-3000:]}")
    return " ready." in worker.log.read_text(errors="replace")


@pytest.fixture
def start_dagster(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """`dagster dev` (webserver + daemons, the backfill daemon included); returns its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        import urllib.request

        port = devstack.free_port()
        log = (tmp_path / "dagster-dev.log").open("wb")
        process = start_dagit(env, port, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError("dagster dev exited: see " + log.name)
            try:
                with urllib.request.urlopen(url + "/server_info", timeout=2):
                    return True
            except OSError:
                return False

        wait_for("dagster dev", up, 300)
        return url

    yield start
    for process in processes:
        stop_process_group(process)
