"""A months x areas backfill launched like Dagit does (GraphQL launchPartitionBackfill), run by
the backfill daemon's iteration, batched by the asset's BackfillPolicy, loading real Postgres
from the moto S3 server."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.test.utils import execute_dagster_graphql

from data_platform.core.objectstore_s3 import S3ObjectStore
from data_platform.core.partitions import SnapshotKey
from data_platform.core.postgres import connect
from data_platform.silver import defs as silver
from data_platform.silver.loader import snapshot_row_count
from data_platform_tests.silver.conftest import HEADER, csv_bytes, sample_rows

CODE = """
import dagster as dg
from data_platform.resources import shared_resources
from data_platform.silver.defs import defs as silver_defs

defs = dg.Definitions.merge(silver_defs(), dg.Definitions(resources=shared_resources()))
"""
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""


@pytest.fixture
def services_env(monkeypatch, pg_url: str, s3_endpoint: str, bucket: str, aws_env) -> None:
    """What `shared_resources()` reads when a run opens its resources."""
    monkeypatch.setenv("DATA_PLATFORM_PG_URL", pg_url)
    monkeypatch.setenv("DATA_PLATFORM_RAW_URL", f"s3://{bucket}/raw")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)


def test_backfill_of_two_months_by_two_areas(
    preset, services_env, s3_client, bucket: str, pg_url: str, tmp_path: Path
) -> None:
    store = S3ObjectStore(s3_client, bucket, "raw")
    snapshots = [
        SnapshotKey(2024, month, "서울특별시", sigungu)
        for month in (4, 5)
        for sigungu in ("강남구", "서초구")
    ]
    expected = {}
    for index, snapshot in enumerate(snapshots):
        rows = sample_rows(10 + index, index * 100)
        store.put(f"{preset.dataset}/{snapshot.path()}/part-0.csv", csv_bytes(HEADER, rows))
        expected[snapshot] = len(rows)
    code = tmp_path / "silver_code.py"
    code.write_text(CODE)
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(code), attribute="defs"), location_name="silver"
    )

    home = tmp_path / "dagster_home"
    home.mkdir()
    # Runs execute synchronously inside the daemon iteration: no run workers to wait for.
    with dg.instance_for_test(
        temp_dir=str(home), synchronous_run_launcher=True, synchronous_run_coordinator=True
    ) as instance:
        instance.add_dynamic_partitions(
            silver.area_partitions(preset.dataset).name,
            [snapshots[0].area_key, snapshots[1].area_key],
        )
        with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
            launched = execute_dagster_graphql(
                workspace.create_request_context(),
                LAUNCH,
                {
                    "params": {
                        # What Dagit sends for a partition selection. (The `partitionsByAssets`
                        # range input fails in 1.13.27 for a dynamic dimension: it checks the
                        # range without the instance.)
                        "assetSelection": [{"path": list(silver.silver_key(preset).path)}],
                        "partitionNames": [str(silver.partition_key(s)) for s in snapshots],
                    }
                },
            )
            outcome = launched.data["launchPartitionBackfill"]
            assert outcome["__typename"] == "LaunchBackfillSuccess", "".join(
                outcome.get("stack") or []
            )
            backfill_id = outcome["backfillId"]
            for _ in range(10):
                list(execute_backfill_iteration(workspace, logging.getLogger("backfill-test")))
                backfill = instance.get_backfill(backfill_id)
                if backfill.status != BulkActionStatus.REQUESTED:
                    break
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
        runs = instance.get_runs()
        assert all(run.is_success for run in runs)
        # BackfillPolicy.multi_run batches: one run per month, each a range of both areas
        assert len(runs) == 2
        assert sorted(
            (
                run.tags["dagster/asset_partition_range_start"],
                run.tags["dagster/asset_partition_range_end"],
            )
            for run in runs
        ) == [
            (str(silver.partition_key(snapshots[0])), str(silver.partition_key(snapshots[1]))),
            (str(silver.partition_key(snapshots[2])), str(silver.partition_key(snapshots[3]))),
        ]
        materialized = instance.get_materialized_partitions(silver.silver_key(preset))
        assert materialized == {str(silver.partition_key(s)) for s in snapshots}

    conn = connect(pg_url)
    try:
        assert {s: snapshot_row_count(conn, preset, s) for s in snapshots} == expected
    finally:
        conn.close()
