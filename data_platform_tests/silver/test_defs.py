"""The silver Dagster definitions: loadable, sensor ticks, an end-to-end partition with checks."""

from __future__ import annotations

import dagster as dg
import pytest
from psycopg2 import sql

from data_platform.core.objectstore_s3 import S3ObjectStore
from data_platform.core.partitions import SnapshotKey
from data_platform.core.postgres import connect, qualified
from data_platform.resources import AwsSessionResource, ObjectStoreResource, PostgresResource
from data_platform.silver import defs as silver
from data_platform.silver.discovery import DiscoveryLimits
from data_platform.silver.discovery_state import load_cursor
from data_platform.silver.presets import TablePreset
from data_platform_tests.silver.conftest import HEADER, csv_bytes, sample_rows

APRIL = SnapshotKey(2024, 4, "서울특별시", "강남구")
MAY = SnapshotKey(2024, 5, "서울특별시", "강남구")
ODD = SnapshotKey(2024, 5, "a/b|c", "d~e%")


@pytest.fixture
def resources(pg_url: str, s3_endpoint: str, bucket: str, aws_env) -> dict[str, object]:
    aws = AwsSessionResource(endpoint_url=s3_endpoint, region="us-east-1")
    return {
        "postgres": PostgresResource(url=pg_url),
        "aws": aws,
        "raw_store": ObjectStoreResource(url=f"s3://{bucket}/raw", aws=aws),
    }


@pytest.fixture
def store(s3_client, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(s3_client, bucket, "raw")


def upload(
    store: S3ObjectStore, preset: TablePreset, snapshot: SnapshotKey, name: str, rows
) -> str:
    key = f"{preset.dataset}/{snapshot.path()}/{name}"
    store.put(key, csv_bytes(HEADER, rows))
    return key


def sensor_of(definitions: dg.Definitions) -> dg.SensorDefinition:
    [sensor] = definitions.sensors
    return sensor


def tick(sensor, resources, instance, cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(
        cursor=cursor, instance=instance, resources={"raw_store": resources["raw_store"]}
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:  # what the daemon would do
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def stored(instance: dg.DagsterInstance, cursor: str):
    return load_cursor(cursor, instance.daemon_cursor_storage, silver.SENSOR_NAME)


def test_definitions_load_and_partitions_are_month_by_area(preset, resources) -> None:
    definitions = dg.Definitions.merge(silver.defs([preset]), dg.Definitions(resources=resources))
    dg.Definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    node = graph.get(silver.silver_key(preset))
    partitions = node.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    dims = {d.name: d.partitions_def for d in partitions.partitions_defs}
    assert isinstance(dims["month"], dg.MonthlyPartitionsDefinition)
    assert isinstance(dims["area"], dg.DynamicPartitionsDefinition)
    assert node.backfill_policy == dg.BackfillPolicy.multi_run(silver.MAX_PARTITIONS_PER_RUN)
    assert graph.get(silver.raw_key(preset.dataset)).partitions_def == partitions
    assert {c.name for c in node.check_keys} == {silver.CHECK_ROWS, silver.CHECK_CURRENT}
    spec = definitions.get_assets_def(silver.silver_key(preset)).specs_by_key[node.key]
    assert spec.metadata["dagster/table_name"] == f"{preset.schema}.{preset.table}"
    columns = spec.metadata["dagster/column_schema"].columns
    assert [(c.name, c.type) for c in columns] == [(c.name, c.pg_type) for c in preset.columns]
    assert definitions.get_assets_def(silver.silver_key(preset)).op.pool == "postgres_platform"
    assert not silver.defs([]).sensors  # no presets, nothing to watch
    for snapshot in (MAY, ODD):
        key = silver.partition_key(snapshot)
        assert "/" not in key.keys_by_dimension["area"]
        assert "|" not in key.keys_by_dimension["area"]
        assert silver.snapshot_of(str(key)) == snapshot
        assert silver.snapshot_of(key) == snapshot


def test_sensor_requests_new_and_changed_partitions_once(preset, resources, store) -> None:
    sensor = sensor_of(silver.defs([preset]))
    instance = dg.DagsterInstance.ephemeral()
    upload(store, preset, APRIL, "a.csv", sample_rows(5))
    upload(store, preset, MAY, "a.csv", sample_rows(5))
    upload(store, preset, MAY, "b.csv", sample_rows(5, 5))
    store.put(f"{preset.dataset}/year=2024/month=5/oops.csv", b"x")  # breaks the layout

    first = tick(sensor, resources, instance)
    requests = {r.partition_key: r for r in first.run_requests}
    assert set(requests) == {silver.partition_key(APRIL), silver.partition_key(MAY)}
    assert all(r.asset_selection == [silver.silver_key(preset)] for r in requests.values())
    [add] = first.dynamic_partitions_requests
    assert add.partition_keys == [APRIL.area_key]
    observed = {e.partition: e for e in first.asset_events}
    may = observed[silver.partition_key(MAY)]
    assert may.asset_key == silver.raw_key(preset.dataset)
    assert may.metadata["files"].value == 2
    assert [k["key"] for k in may.metadata["keys"].value] == [
        f"{preset.dataset}/{MAY.path()}/a.csv",
        f"{preset.dataset}/{MAY.path()}/b.csv",
    ]
    assert all(k["etag"] and k["size"] for k in may.metadata["keys"].value)

    second = tick(sensor, resources, instance, first.cursor)
    assert not second.run_requests and second.skip_reason
    assert (
        stored(instance, second.cursor).fingerprints == stored(instance, first.cursor).fingerprints
    )
    assert len(second.cursor) < 1000  # the fingerprints are in the key-value store

    upload(store, preset, APRIL, "a.csv", sample_rows(6))  # same key, new etag
    third = tick(sensor, resources, instance, second.cursor)
    [again] = third.run_requests
    assert again.partition_key == silver.partition_key(APRIL)
    assert again.run_key != requests[silver.partition_key(APRIL)].run_key
    assert not third.dynamic_partitions_requests  # the area exists already


def test_sensor_adds_new_areas_and_survives_deletions(preset, resources, store) -> None:
    sensor = sensor_of(silver.defs([preset]))
    instance = dg.DagsterInstance.ephemeral()
    gone = upload(store, preset, MAY, "a.csv", sample_rows(3))
    first = tick(sensor, resources, instance)

    store.delete(gone)
    seocho = SnapshotKey(2024, 5, "서울특별시", "서초구")
    upload(store, preset, seocho, "a.csv", sample_rows(3))
    second = tick(sensor, resources, instance, first.cursor)
    [request] = second.run_requests
    assert request.partition_key == silver.partition_key(seocho)
    [add] = second.dynamic_partitions_requests
    assert add.partition_keys == [seocho.area_key]
    emptied = {e.partition: e.metadata["files"].value for e in second.asset_events}
    assert emptied == {silver.partition_key(MAY): 0, silver.partition_key(seocho): 1}
    assert stored(instance, second.cursor).fingerprints[preset.dataset] == {
        seocho.path(): request.tags["silver/fingerprint"]
    }
    assert not tick(sensor, resources, instance, second.cursor).run_requests


def test_sensor_work_per_tick_is_bounded_and_continues(preset, resources, store) -> None:
    areas = [SnapshotKey(2024, 5, "부산광역시", f"구{i}") for i in range(5)]
    for snapshot in areas:
        upload(store, preset, snapshot, "a.csv", sample_rows(2))
    limits = DiscoveryLimits(frontier_keys=10, sweep_keys=10, max_changes=2)
    sensor = sensor_of(silver.defs([preset], limits=limits))
    instance = dg.DagsterInstance.ephemeral()
    cursor, requested = None, []
    for _ in range(4):
        result = tick(sensor, resources, instance, cursor)
        assert len(result.run_requests) <= 2
        requested += [r.partition_key for r in result.run_requests]
        cursor = result.cursor
    assert sorted(requested) == sorted(silver.partition_key(s) for s in areas)
    assert set(instance.get_dynamic_partitions(silver.area_partitions(preset.dataset).name)) == {
        s.area_key for s in areas
    }


def materialize(
    preset, resources, instance, *snapshots: SnapshotKey, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(
        silver.area_partitions(preset.dataset).name, sorted({s.area_key for s in snapshots})
    )
    [asset] = [a for a in silver.defs([preset]).assets if isinstance(a, dg.AssetsDefinition)]
    [snapshot] = snapshots
    return dg.materialize(
        [asset],
        partition_key=silver.partition_key(snapshot),
        resources=resources,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def test_materialize_a_partition_end_to_end(preset, resources, store, pg_url) -> None:
    upload(store, preset, MAY, "a.csv", sample_rows(40))
    upload(store, preset, MAY, "b.csv", sample_rows(60, 40))
    store.put(f"{preset.dataset}/{MAY.path()}/_SUCCESS", b"")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(preset, resources, instance, MAY)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[silver.CHECK_ROWS].passed and checks[silver.CHECK_CURRENT].passed
    assert {c.partition for c in checks.values()} == {str(silver.partition_key(MAY))}
    [materialization] = result.asset_materializations_for_node(result.job_def.nodes[0].name)
    assert materialization.partition == str(silver.partition_key(MAY))
    assert materialization.metadata["dagster/row_count"].value == 100
    assert [f["rows"] for f in materialization.metadata["files"].value] == [40, 60]
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT count(*), count(DISTINCT sigungu) FROM {}").format(
                    qualified(preset.schema, preset.table)
                )
            )
            assert cur.fetchone() == (100, 1)
    finally:
        conn.close()


def test_rows_check_fails_when_the_copy_path_loses_rows(
    preset, resources, store, monkeypatch
) -> None:
    """A reader that drops the second half of every piece: COPY's own count agrees with
    count(*), but not with the rows in the files."""
    from data_platform.silver import csv_reader
    from data_platform.silver.streams import Piece, lines_in

    real = csv_reader._raw_pieces

    def lossy(*args):
        for piece in real(*args):
            lines = piece.data.splitlines(keepends=True)
            data = b"".join(lines[: len(lines) // 2 or 1])
            yield Piece(data, piece.first_line, lines_in(data))

    monkeypatch.setattr(csv_reader, "_raw_pieces", lossy)
    upload(store, preset, MAY, "a.csv", sample_rows(40))
    result = materialize(preset, resources, dg.DagsterInstance.ephemeral(), MAY)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[silver.CHECK_ROWS].passed
    mismatch = checks[silver.CHECK_ROWS].metadata["mismatches"].value
    assert mismatch == {
        str(silver.partition_key(MAY)): {"rows_in_files": 40, "rows_in_postgres": 20}
    }


def test_current_check_fails_when_a_file_arrives_during_the_load(
    preset, resources, store, monkeypatch
) -> None:
    from data_platform.silver import loader

    real = loader.load_snapshot

    def load_while_uploading(*args, **kwargs):
        result = real(*args, **kwargs)
        upload(store, preset, MAY, "late.csv", sample_rows(3, 500))  # lands mid-run
        return result

    monkeypatch.setattr(loader, "load_snapshot", load_while_uploading)
    upload(store, preset, MAY, "a.csv", sample_rows(10))
    result = materialize(preset, resources, dg.DagsterInstance.ephemeral(), MAY)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[silver.CHECK_ROWS].passed
    assert not checks[silver.CHECK_CURRENT].passed
    changed = checks[silver.CHECK_CURRENT].metadata["changed_during_load"].value
    [difference] = changed.values()
    assert difference == {"added": [f"{preset.dataset}/{MAY.path()}/late.csv"]}


def test_a_bad_value_fails_the_run_naming_row_and_column_never_the_value(
    preset, resources, store
) -> None:
    name = "홍길동"  # a person's name where a number belongs
    rows = sample_rows(10)
    rows[6][5] = name  # floor is integer
    upload(store, preset, MAY, "a.csv", rows)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(preset, resources, instance, MAY, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "a.csv: data row 7 (line 8), column floor: invalid_text_representation" in (
        failure.message
    )
    assert "of type integer" in failure.message
    events = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
    assert any("column floor" in e for e in events)
    assert not [e for e in events if name in e or name.encode("unicode_escape").decode() in e]


def test_missing_files_fail_the_run_and_leave_the_table(preset, resources) -> None:
    result = dg.materialize(
        [a for a in silver.defs([preset]).assets if isinstance(a, dg.AssetsDefinition)],
        partition_key=silver.partition_key(MAY),
        resources=resources,
        instance=_instance_with_area(preset, MAY),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "no auto raw files under" in failure.message


def _instance_with_area(preset: TablePreset, snapshot: SnapshotKey) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(
        silver.area_partitions(preset.dataset).name, [snapshot.area_key]
    )
    return instance
