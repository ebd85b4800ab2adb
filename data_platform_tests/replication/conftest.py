"""Two real databases per test: `pg_url` is the target, `source_url` a second fresh database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_platform import devstack
from data_platform.core.postgres import connect


@pytest.fixture
def source_url(pg_server_url: str) -> Iterator[str]:
    from psycopg2 import sql

    name = f"dp_source_{uuid.uuid4().hex[:12]}"
    url = devstack.create_database(pg_server_url, name)
    yield url
    conn = connect(pg_server_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


def execute(url: str, *statements: str, params: tuple = (), autocommit: bool = False) -> None:
    conn = connect(url)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params or None)
        conn.commit()
    finally:
        conn.close()


def fetch(url: str, query: str, params: tuple = ()) -> list[tuple]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params or None)
            return cur.fetchall()
    finally:
        conn.close()


def run_in_background(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    """`data-platform replicate run` with the spec in `workdir`, as its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "data_platform.cli", "replicate", "run"],
        env={**os.environ, **env},
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_9_when(process: subprocess.Popen, url: str, running: str) -> None:
    """SIGKILL `process` as soon as the count query `running` finds its statement in `url`
    (so the kill lands inside it), then wait until the server has ended that statement."""
    try:
        deadline = time.monotonic() + 60
        while fetch(url, running) == [(0,)]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while fetch(url, running) != [(0,)] and time.monotonic() < deadline:
        time.sleep(0.05)
