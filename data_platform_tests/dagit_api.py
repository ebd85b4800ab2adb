"""Driving Dagster processes from tests: starting the CLI, reading Dagit's GraphQL API (runs,
backfills, asset nodes and their latest events, sensors), waiting for a condition."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
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


ALL_RUNS_QUERY = """
query {
  runsOrError(limit: 200) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}"""


def all_runs(base_url: str) -> list[dict[str, Any]]:
    """Every run (up to 200), newest first, with its tags as a dict under `tags`."""
    runs = graphql(base_url, ALL_RUNS_QUERY)["runsOrError"]["results"]
    return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in runs]


ASSET_NODES_QUERY = """
query {
  assetNodes {
    assetKey { path } groupName isObservable isMaterializable dependencyKeys { path }
    automationCondition { label }
    internalFreshnessPolicy { __typename }
  }
}"""


@dataclass(frozen=True)
class AssetNode:
    """An asset as Dagit's GraphQL API describes it; paths are keys joined with `/`."""

    path: str
    group: str
    observable: bool
    materializable: bool  # False for an external asset (an AssetSpec: a raw source)
    upstream: frozenset[str]
    automation_condition: str | None
    has_freshness_policy: bool

    @property
    def label(self) -> str:
        """What Dagit's graph writes on the node: the last part of the key."""
        return self.path.rsplit("/", 1)[-1]


def asset_nodes(base_url: str) -> list[AssetNode]:
    return [
        AssetNode(
            path="/".join(node["assetKey"]["path"]),
            group=node["groupName"] or "default",
            observable=node["isObservable"],
            materializable=node["isMaterializable"],
            upstream=frozenset("/".join(dep["path"]) for dep in node["dependencyKeys"]),
            automation_condition=(node["automationCondition"] or {}).get("label"),
            has_freshness_policy=node["internalFreshnessPolicy"] is not None,
        )
        for node in graphql(base_url, ASSET_NODES_QUERY)["assetNodes"]
    ]


LATEST_EVENT_QUERY = """
query($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 1) { runId metadataEntries { label ...Value } }
      assetObservations(limit: 1) { runId metadataEntries { label ...Value } }
    }
  }
}
fragment Value on MetadataEntry {
  ... on IntMetadataEntry { intValue }
  ... on TextMetadataEntry { text }
  ... on FloatMetadataEntry { floatValue }
}"""


def latest_event(base_url: str, path: str, kind: str) -> dict[str, Any] | None:
    """The asset's latest `materialization` or `observation`: its runId and metadata by label
    (int, float or text values), or None when there is none."""
    asset = graphql(base_url, LATEST_EVENT_QUERY, {"path": path.split("/")})["assetOrError"]
    events = asset.get(
        "assetMaterializations" if kind == "materialization" else "assetObservations"
    )
    if not events:
        return None
    metadata = {
        entry["label"]: entry.get("intValue", entry.get("floatValue", entry.get("text")))
        for entry in events[0]["metadataEntries"]
    }
    return {"runId": events[0]["runId"], "metadata": metadata}


SENSOR_QUERY = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { status ticks(limit: 5) { status runIds runKeys skipReason } } }
  }
}"""
START_SENSOR = """
mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename } }"""


def _sensor_selector(name: str) -> dict[str, str]:
    from data_platform.devstack_cli import LOCATION_NAME

    return {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": "__repository__",
        "sensorName": name,
    }


def sensor_state(base_url: str, name: str) -> dict[str, Any]:
    """`status` and the latest `ticks` (newest first) of a sensor."""
    data = graphql(base_url, SENSOR_QUERY, {"selector": _sensor_selector(name)})
    return data["sensorOrError"]["sensorState"]


def start_sensor(base_url: str, name: str) -> None:
    graphql(base_url, START_SENSOR, {"selector": _sensor_selector(name)})


def first_finished_tick(base_url: str, name: str, timeout: float) -> dict[str, Any]:
    """The oldest finished tick of a sensor, once there is one."""

    def probe() -> dict[str, Any] | None:
        done = [t for t in sensor_state(base_url, name)["ticks"] if t["status"] != "STARTED"]
        return done[-1] if done else None

    return wait_for(f"a finished tick of sensor {name}", probe, timeout, every=2)
