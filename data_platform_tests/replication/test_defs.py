"""Dagster: one asset per spec table, resources per connection, metadata, checks, retries."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from data_platform.replication import defs as replication
from data_platform.replication.errors import SpecError
from data_platform.replication.spec import parse_spec
from data_platform.resources import PostgresResource
from data_platform_tests.automation import AutomationTicks
from data_platform_tests.replication.conftest import execute, fetch
from data_platform_tests.replication.test_engine import make_source


def spec(strategy: str = "merge", primary_key: str = "") -> object:
    return parse_spec(
        {
            "connections": {"src": {"url": "${SOURCE_PG_URL}"}, "dst": {"url": "${TARGET_PG_URL}"}},
            "tables": [
                {
                    "name": "items",
                    "strategy": strategy,
                    "source": {"connection": "src", "table": "raw.items"},
                    "target": {"connection": "dst", "table": "mirror.items"},
                    **({"primary_key": [primary_key]} if primary_key else {}),
                }
            ],
        }
    )


def materialize(
    definitions: dg.Definitions, source_url: str, pg_url: str
) -> dg.ExecuteInProcessResult:
    assets = [a for a in definitions.assets or [] if isinstance(a, dg.AssetsDefinition)]
    resources = {"src": PostgresResource(url=source_url), "dst": PostgresResource(url=pg_url)}
    return dg.materialize(assets, resources=resources, raise_on_error=False)


def test_one_asset_per_table_with_metadata_and_checks(source_url: str, pg_url: str) -> None:
    make_source(source_url)
    definitions = replication.defs(spec())
    dg.Definitions.validate_loadable(definitions)
    asset = definitions.get_assets_def(dg.AssetKey(["replication", "mirror", "mirror_items"]))
    assert asset.group_names_by_key[asset.key] == "replication"
    assert asset.specs_by_key[asset.key].metadata["dagster/table_name"] == "mirror.items"
    # raw.items is outside the platform: an external asset names it
    assert asset.dependency_keys == {replication.source_key(spec().tables[0])}
    assert set(definitions.resources) == {"src", "dst"}
    result = materialize(definitions, source_url, pg_url)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["staged_rows"].value == 100 and metadata["inserted"].value == 100
    assert metadata["skipped_rows"].value == 0  # rows a NULL watermark kept out
    assert metadata["dagster/row_count"].value == 100
    columns = metadata["dagster/column_schema"].value.columns
    assert [c.name for c in columns][:1] == ["id"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {replication.CHECK_COUNTS: True, replication.CHECK_CHECKSUM: True}
    assert fetch(pg_url, "SELECT count(*) FROM mirror.items") == [(100,)]


def test_bad_input_fails_without_retries_and_checksum_failure_is_a_failed_check(
    source_url: str, pg_url: str
) -> None:
    execute(
        source_url,
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.items (id int, name text)",
        "INSERT INTO raw.items VALUES (48151623, 'a'), (48151623, 'b')",
    )
    quick = dg.RetryPolicy(max_retries=1, delay=0)
    result = materialize(
        replication.defs(spec(primary_key="id"), retry_policy=quick), source_url, pg_url
    )
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "occur more than once" in failure.step_failure_data.error.message
    assert "48151623" not in repr(result.all_events)  # a key's value never reaches the log
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]

    execute(source_url, "DELETE FROM raw.items WHERE name = 'b'")
    execute(
        pg_url,
        "CREATE SCHEMA mirror",
        "CREATE TABLE mirror.items (id int PRIMARY KEY, name text)",
        "CREATE FUNCTION mirror.tamper() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN NEW.name := 'x'; RETURN NEW; END $$",
        "CREATE TRIGGER tamper BEFORE INSERT ON mirror.items FOR EACH ROW"
        " EXECUTE FUNCTION mirror.tamper()",
    )
    result = materialize(replication.defs(spec(primary_key="id")), source_url, pg_url)
    assert not result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {replication.CHECK_COUNTS: True, replication.CHECK_CHECKSUM: False}
    assert fetch(pg_url, "SELECT count(*) FROM mirror.items") == [(0,)]


def test_connection_errors_are_retried(source_url: str, pg_url: str) -> None:
    make_source(source_url)
    assert replication.defs(spec()).assets[0].op.retry_policy == replication.RETRY_POLICY
    quick = dg.RetryPolicy(max_retries=1, delay=0)
    asset = replication.defs(spec(), retry_policy=quick).assets[0]
    resources = {
        "src": PostgresResource(url=source_url),
        "dst": PostgresResource(url=pg_url.rsplit("/", 1)[0] + "/no_such_db"),
    }
    result = dg.materialize([asset], resources=resources, raise_on_error=False)
    assert not result.success
    assert [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_code_location_reads_the_spec_named_by_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "replication.yaml"
    path.write_text(
        "connections: {src: {url: '${SOURCE_PG_URL}'}, postgres: {url: '${TARGET_PG_URL}'}}\n"
        "tables: [{source: {connection: src, table: a.b},\n"
        "          target: {connection: postgres, table: c.d}}]\n"
    )
    env = {"DATA_PLATFORM_REPLICATION_SPEC": str(path)}
    with pytest.raises(SpecError, match="connection 'postgres'"):
        replication.defs_from_environment(env, reserved_resource_keys={"postgres"})
    path.write_text(path.read_text().replace("postgres", "dw"))
    definitions = replication.defs_from_environment(env, reserved_resource_keys={"postgres"})
    assert definitions.assets[0].key == dg.AssetKey(["replication", "c", "c_d"])
    assert replication.defs_from_environment(
        {"DATA_PLATFORM_REPLICATION_SPEC": str(tmp_path / "none")}
    ).assets in (None, [])


SILVER = dg.AssetKey(["silver", "silver_stage_1_main"])


def serving_spec() -> object:
    """A serving copy of a silver table: the source is the platform's own database."""
    return parse_spec(
        {
            "connections": {
                "platform": {"url": "${DATA_PLATFORM_PG_URL}"},
                "serving": {"url": "${SERVING_PG_URL}"},
            },
            "tables": [
                {
                    "source": {"connection": "platform", "table": "public.silver_stage_1_main"},
                    "target": {"connection": "serving", "table": "serving.stage_1_main"},
                    "primary_key": ["id"],
                }
            ],
        }
    )


def test_a_copy_of_a_silver_table_depends_on_it_and_runs_after_it() -> None:
    columns = dg.TableSchema([dg.TableColumn("id", "bigint"), dg.TableColumn("name", "text")])
    silver = dg.AssetSpec(
        SILVER,
        metadata={
            "dagster/table_name": "public.silver_stage_1_main",
            "dagster/column_schema": columns,
        },
    )
    tables = {"public.silver_stage_1_main": silver}
    copies = replication.defs(serving_spec(), platform_tables=tables)
    definitions = dg.Definitions.merge(copies, dg.Definitions(assets=[silver]))
    copy_key = dg.AssetKey(["replication", "serving", "serving_stage_1_main"])
    assert definitions.resolve_asset_graph().get(copy_key).parent_keys == {SILVER}
    copy_spec = copies.assets[0].specs_by_key[copy_key]
    assert copy_spec.metadata["dagster/column_schema"] == columns  # known before any run
    assert copies.assets[0].op.pool == "postgres_serving"
    ticks = AutomationTicks(definitions, copy_key)
    assert ticks.tick() == {}  # nothing new upstream
    ticks.materialized(SILVER)
    assert ticks.tick() == {copy_key: {None}}
    assert ticks.tick() == {}


def test_an_upstream_named_in_the_spec_is_the_parent() -> None:
    """`upstream: silver/silver_stage_1_main` on a table names the asset it copies."""
    named = parse_spec(
        {
            "connections": {"src": {"url": "${SOURCE_PG_URL}"}, "dst": {"url": "${TARGET_PG_URL}"}},
            "tables": [
                {
                    "source": {"connection": "src", "table": "public.silver_stage_1_main"},
                    "target": {"connection": "dst", "table": "serving.stage_1_main"},
                    "upstream": "silver/silver_stage_1_main",
                }
            ],
        }
    )
    copies = replication.defs(named)
    [asset] = [a for a in copies.assets if isinstance(a, dg.AssetsDefinition)]
    assert asset.dependency_keys == {SILVER}
    assert asset.specs_by_key[asset.key].automation_condition is not None
    assert len(copies.assets) == 1  # no external source asset for it
