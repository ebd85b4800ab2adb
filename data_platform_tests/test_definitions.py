import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from data_platform.core.postgres import PostgresSettings
from data_platform.definitions import (
    AUTOMATION_SENSOR,
    HOT_TIERS_SENSOR,
    DuplicateLabelError,
    build_definitions,
    check_labels,
    defs,
)
from data_platform_tests.automation import AutomationTicks

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_shared_resources() -> None:
    dg.Definitions.validate_loadable(defs)
    assert {"postgres", "aws", "raw_store"} <= set(defs.resources)


def test_dagster_validate_with_instance_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """`dagster definitions validate` passes with dagster.yaml's Postgres storage."""
    settings = PostgresSettings.from_url(pg_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": settings.host,
        "DAGSTER_PG_PORT": str(settings.port),
        "DAGSTER_PG_DB": settings.dbname,
        "DAGSTER_PG_USER": settings.user,
        "DAGSTER_PG_PASSWORD": settings.password or "",
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename IN ('runs', 'event_logs')")
        assert cur.fetchone()[0] == 2


# --- The code location as Dagit shows it: one connected graph, standard metadata, automation ---

SILVER = dg.AssetKey(["silver", "silver_stage_1_main"])
SERVING = dg.AssetKey(["replication", "serving", "serving_silver_stage_1_main"])
ROW_WRITING_KINDS = {"postgres", "parquet"}


def materializable_specs(definitions: dg.Definitions) -> list[dg.AssetSpec]:
    graph = definitions.resolve_asset_graph()
    return [
        spec
        for spec in definitions.resolve_all_asset_specs()
        if graph.get(spec.key).is_materializable
    ]


@pytest.fixture
def with_serving_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    """The code location with a replication spec copying the silver table to a serving database."""
    spec = tmp_path / "replication.yaml"
    spec.write_text(
        "connections: {platform: {url: '${DATA_PLATFORM_PG_URL}'},"
        " serving: {url: '${SERVING_PG_URL}'}}\n"
        "tables: [{source: {connection: platform, table: public.silver_stage_1_main},\n"
        "          target: {connection: serving, table: serving.silver_stage_1_main},\n"
        "          primary_key: [id]}]\n"
    )
    monkeypatch.chdir(REPO_ROOT)  # training_tasks.toml, as Dagster starts here
    return build_definitions({"DATA_PLATFORM_REPLICATION_SPEC": str(spec)})


def test_every_label_is_unique() -> None:
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    labels = [key.path[-1] for key in keys]
    assert len(labels) == len(set(labels)), sorted(labels)
    clash = dg.Definitions(assets=[dg.AssetSpec(["a", "x"]), dg.AssetSpec(["b", "x"])])
    with pytest.raises(DuplicateLabelError, match="asset labels x are used"):
        check_labels(clash)


def test_every_origin_is_an_external_asset_and_the_graph_is_connected() -> None:
    graph = defs.resolve_asset_graph()
    roots = {key for key in graph.get_all_asset_keys() if not graph.get(key).parent_keys}
    assert all(not graph.get(key).is_materializable for key in roots), roots
    assert {
        dg.AssetKey(["tiers", "aws", "aws_raw_snapshots"]),
        dg.AssetKey(["parts", "suppliers", "demo_site"]),
        dg.AssetKey(["training", "chat_summary", "chat_summary_producer"]),
        dg.AssetKey(["raw", "raw_silver_stage_1_main"]),
    } <= roots


def test_assets_that_write_rows_declare_columns_owners_tags_and_descriptions(
    with_serving_copy: dg.Definitions,
) -> None:
    specs = materializable_specs(with_serving_copy)
    writers = [s for s in specs if s.kinds & ROW_WRITING_KINDS]
    # silver, parts x2, training x2, tiers x6, the serving copy (its upstream's columns); a copy
    # of a source outside the platform gets its columns after the copy (replication/test_defs.py)
    assert len(writers) >= 12
    for spec in writers:
        assert isinstance(spec.metadata.get("dagster/column_schema"), dg.TableSchema), spec.key
    for spec in with_serving_copy.resolve_all_asset_specs():
        assert spec.owners and {"domain", "layer"} <= set(spec.tags), spec.key
        assert "<" not in (spec.description or ""), spec.key  # Dagit drops it as a tag
        if "postgres" in spec.kinds:
            assert spec.metadata.get("dagster/table_name"), spec.key
    checks = [c for a in with_serving_copy.assets or [] for c in getattr(a, "check_specs", [])]
    assert len(checks) >= 10 and all("<" not in (c.description or "") for c in checks)
    for spec in specs:
        assert "dagster/code_references" in spec.metadata, spec.key
    assert SERVING in {s.key for s in writers}


def test_a_serving_copy_of_silver_has_it_as_parent_and_follows_a_new_partition(
    with_serving_copy: dg.Definitions,
) -> None:
    definitions = with_serving_copy
    graph = definitions.resolve_asset_graph()
    assert graph.get(SERVING).parent_keys == {SILVER}
    assert definitions.get_assets_def(SERVING).op.pool == "postgres_serving"
    ticks = AutomationTicks(definitions, SERVING)
    assert ticks.tick() == {}  # nothing changed
    area = "서울특별시~강남구"
    ticks.instance.add_dynamic_partitions("silver_area_silver_stage_1_main", [area])
    ticks.materialized(SILVER, str(dg.MultiPartitionKey({"month": "2024-05-01", "area": area})))
    assert ticks.tick() == {SERVING: {None}}
    assert ticks.tick() == {}


def test_warm_follows_a_new_hot_day_and_nothing_runs_without_a_change() -> None:
    hot = dg.AssetKey(["tiers", "gcp", "gcp_hot"])
    warm = dg.AssetKey(["tiers", "gcp", "gcp_warm"])
    ticks = AutomationTicks(defs, warm)
    assert ticks.tick() == {}
    ticks.materialized(hot, "2026-02-14")
    assert ticks.tick() == {warm: {"2026-02-01"}}


def test_freshness_pools_jobs_and_the_automation_sensor() -> None:
    graph = defs.resolve_asset_graph()
    fresh = {key for key in graph.get_all_asset_keys() if graph.get(key).freshness_policy}
    for provider in ("aws", "azure", "gcp"):
        assert {
            dg.AssetKey(["tiers", provider, f"{provider}_hot"]),
            dg.AssetKey(["tiers", provider, f"{provider}_warm"]),
        } <= fresh
    assert dg.AssetKey(["parts", "parts_prices"]) in fresh
    assert dg.AssetKey(["training", "chat_summary", "chat_summary_dataset"]) in fresh
    assert defs.get_assets_def(SILVER).op.pool == "postgres_platform"
    assert defs.get_assets_def(dg.AssetKey(["parts", "parts_prices"])).op.pool == (
        "postgres_platform"
    )
    assert {job.name for job in defs.jobs} >= {
        "silver_stage_1_main_job",
        "parts_job",
        "training_job",
        "tiers_hot_job",
        "tiers_warm_job",
    }
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    hot_sensor = defs.resolve_sensor_def(HOT_TIERS_SENSOR)
    assert hot_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    hot_keys = {dg.AssetKey(["tiers", p, f"{p}_hot"]) for p in ("aws", "azure", "gcp")}
    assert hot_sensor.asset_selection.resolve(graph) == hot_keys
    assert not sensor.asset_selection.resolve(graph) & hot_keys
    conditioned = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition}
    assert dg.AssetKey(["tiers", "aws", "aws_warm"]) in conditioned
    assert dg.AssetKey(["parts", "parts_prices"]) in conditioned
    # the hand-written schedules and the warm-after-hot sensors are gone
    assert not defs.schedules
    assert {s.name for s in defs.sensors} == {
        AUTOMATION_SENSOR,
        HOT_TIERS_SENSOR,
        "silver_raw_files",
        "parts_run_failure_to_slack",
    }


def test_code_references_link_to_the_git_host_by_repository_path() -> None:
    env = {"DATA_PLATFORM_GIT_URL": "https://github.com/org/data-platform"}
    linked = build_definitions(env)
    spec = next(s for s in linked.resolve_all_asset_specs() if s.key == SILVER)
    [reference] = spec.metadata["dagster/code_references"].code_references
    assert reference.url.startswith(
        "https://github.com/org/data-platform/tree/main/data_platform/silver/defs/assets.py"
    )
    assert str(REPO_ROOT) not in reference.url


def test_a_provider_in_tiers_providers_toml_gets_its_tiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tiers_providers.toml` where Dagster starts adds a provider's raw snapshots, hot and warm."""
    from data_platform.tiers import config

    monkeypatch.setattr(config, "_PROVIDERS", dict(config._PROVIDERS))
    (tmp_path / "tiers_providers.toml").write_text(
        '[oracle]\npk_columns = ["Shape", "Region"]\nvalue_columns = ["Score"]\n'
        'score_column = "Score"\n'
    )
    monkeypatch.chdir(tmp_path)
    graph = build_definitions({}).resolve_asset_graph()
    for label in ("oracle_raw_snapshots", "oracle_hot", "oracle_warm"):
        assert dg.AssetKey(["tiers", "oracle", label]) in graph.get_all_asset_keys()
    hot = graph.get(dg.AssetKey(["tiers", "oracle", "oracle_hot"]))
    assert dg.AssetKey(["tiers", "oracle", "oracle_raw_snapshots"]) in hot.parent_keys
