"""Driving Dagster processes from tests: starting the CLI, reading Dagit's GraphQL API (runs,
backfills), waiting for a condition."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def start_cli(log: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`data-platform ARGS` in its own process group with SIGINT at its default, output to `log`,
    so a test can stop it (and its children) as a user's Ctrl-C would."""
    from data_platform.devstack_cli import REPO_ROOT

    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "data_platform.cli", *args],
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def graphql(base_url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise AssertionError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


RUNS_QUERY = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter, limit: 50) {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""


def runs_tagged(base_url: str, key: str, value: str) -> list[dict[str, Any]]:
    data = graphql(base_url, RUNS_QUERY, {"filter": {"tags": [{"key": key, "value": value}]}})
    return data["runsOrError"]["results"]


FINISHED_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


def finished_runs(base_url: str, key: str, value: str) -> list[dict[str, Any]] | None:
    """The runs with this tag once there are some and none is still going, else None."""
    runs = runs_tagged(base_url, key, value)
    if runs and all(run["status"] in FINISHED_RUN_STATUSES for run in runs):
        return runs
    return None


BACKFILLS_QUERY = """
query {
  partitionBackfillsOrError(limit: 20) {
    ... on PartitionBackfills { results { id status partitionNames numPartitions } }
  }
}"""


def backfills(base_url: str) -> list[dict[str, Any]]:
    return graphql(base_url, BACKFILLS_QUERY)["partitionBackfillsOrError"]["results"]
