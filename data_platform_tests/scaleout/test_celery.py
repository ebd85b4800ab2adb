"""A silver backfill of four partitions through the Celery executor: the steps run in two worker
processes that share only Postgres, the S3 server and Redis with the rest, and a worker killed
with SIGKILL in the middle of a step costs a retry of that step, never a lost or doubled partition.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_platform.core.partitions import SnapshotKey
from data_platform.core.postgres import connection
from data_platform.silver import defs as silver
from data_platform.silver.presets import load_preset
from data_platform.silver.tables import lock_key
from data_platform_tests.dagit_api import backfills, graphql, runs_tagged, wait_for
from data_platform_tests.scaleout.conftest import Workers
from data_platform_tests.silver.conftest import HEADER, csv_bytes, sample_rows

PRESET = load_preset("silver_stage_1_main")
SNAPSHOTS = [
    SnapshotKey(2024, month, "서울특별시", sigungu)
    for month in (4, 5)
    for sigungu in ("강남구", "서초구")
]
BLOCKED = SNAPSHOTS[3]  # its load waits on a lock the test holds, until a worker is killed
# A dead worker's step goes back to the queue after this; above what a step takes on a busy
# machine, or a live step is delivered a second time (harmless here, but not what is tested).
VISIBILITY_TIMEOUT_SECONDS = 60

LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  }
}"""
ADD_AREA = """
mutation($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
  }
}"""
RUN_EVENTS = """
query($runId: ID!) {
  logsForRun(runId: $runId, limit: 2000) {
    ... on EventConnection { events { __typename ... on MessageEvent { message }
      ... on EngineEvent { metadataEntries { label ... on TextMetadataEntry { text } } } } }
  }
}"""
REPOSITORY = {"repositoryLocationName": "data_platform", "repositoryName": "__repository__"}


def step_workers(url: str, run_id: str) -> list[str]:
    """The Celery worker of each execution of the run's steps, in order."""
    events = graphql(url, RUN_EVENTS, {"runId": run_id})["logsForRun"]["events"]
    return [
        entry["text"]
        for event in events
        if event["__typename"] == "EngineEvent"
        for entry in event["metadataEntries"]
        if entry["label"] == "Celery worker"
    ]


def rows_by_snapshot(pg_url: str) -> dict[SnapshotKey, int]:
    with connection(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT source_year, source_month, region, sigungu, count(*) "
            "FROM public.silver_stage_1_main GROUP BY 1, 2, 3, 4"
        )
        return {SnapshotKey(*row[:4]): row[4] for row in cur.fetchall()}


def blocked_on_lock(pg_url: str) -> bool:
    with connection(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cur.fetchone()[0] > 0


def test_backfill_on_two_celery_workers_survives_a_killed_worker(
    redis_url: str,
    instance_env: dict[str, str],
    start_workers: Callable[[dict[str, str], int], Workers],
    start_dagster: Callable[[dict[str, str]], str],
    s3_client: Any,
    bucket: str,
) -> None:
    expected = {}
    for index, snapshot in enumerate(SNAPSHOTS):
        rows = sample_rows(1_000 + index, index * 10_000)
        key = f"raw/{PRESET.dataset}/{snapshot.path()}/part-0.csv"
        s3_client.put_object(Bucket=bucket, Key=key, Body=csv_bytes(HEADER, rows))
        expected[snapshot] = len(rows)
    env = {
        **instance_env,
        "DATA_PLATFORM_EXECUTOR": "celery",
        "DATA_PLATFORM_CELERY_BROKER_URL": f"{redis_url}/0",
        "DATA_PLATFORM_CELERY_BACKEND_URL": f"{redis_url}/1",
        "DATA_PLATFORM_CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
    }
    workers = start_workers(env, 2)
    url = start_dagster(env)
    pg_url = env["DATA_PLATFORM_PG_URL"]
    for area in sorted({s.area_key for s in SNAPSHOTS}):
        added = graphql(
            url,
            ADD_AREA,
            {
                "selector": REPOSITORY,
                "name": silver.area_partitions(PRESET.dataset).name,
                "key": area,
            },
        )
        assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"

    with connection(pg_url) as holder, holder.cursor() as cur:
        cur.execute(
            "SELECT pg_advisory_lock(%s)", (lock_key(PRESET.schema, PRESET.table, BLOCKED.path()),)
        )
        launched = graphql(
            url,
            LAUNCH,
            {
                "params": {
                    "assetSelection": [{"path": list(silver.silver_key(PRESET).path)}],
                    "partitionNames": [str(silver.partition_key(s)) for s in SNAPSHOTS],
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        wait_for("a step blocked on the held snapshot", lambda: blocked_on_lock(pg_url), 300)
        blocked_run = next(
            run
            for run in runs_tagged(url, "dagster/backfill", backfill_id)
            if run["status"] == "STARTED" and BLOCKED.month_key in str(run["tags"])
        )
        victim = workers.by_hostname(step_workers(url, blocked_run["runId"])[-1])
        victim.kill()
        cur.execute("SELECT pg_advisory_unlock_all()")

    def finished() -> dict[str, Any] | None:
        found = [b for b in backfills(url) if b["id"] == backfill_id]
        return found[0] if found and found[0]["status"] != "REQUESTED" else None

    backfill = wait_for("the backfill to finish", finished, 600, every=2)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    runs = runs_tagged(url, "dagster/backfill", backfill_id)
    assert runs and {run["status"] for run in runs} == {"SUCCESS"}

    executions = {run["runId"]: step_workers(url, run["runId"]) for run in runs}
    hostnames = {name for names in executions.values() for name in names}
    # every step ran in a worker (the executor never runs one itself), and both workers worked
    assert all(executions.values()), executions
    assert {workers.by_hostname(h).name for h in hostnames} == {w.name for w in workers.started}
    # the killed worker's step was handed to the surviving worker and ran there to the end
    first, *again = executions[blocked_run["runId"]]
    assert workers.by_hostname(first) is victim
    assert again and all(workers.by_hostname(h) is not victim for h in again), again
    # every partition loaded once: exactly its files' rows, none lost, none doubled
    assert rows_by_snapshot(pg_url) == expected
    # no step left an output on a worker's disk (only compute logs live there)
    storage = Path(instance_env["DAGSTER_HOME"]) / "storage"
    assert not (storage / "silver").exists(), sorted(storage.rglob("*"))
