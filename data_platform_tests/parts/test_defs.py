"""The Dagster side: a whole day materialized, the schedule's choice of day, the failure sensor."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg2

from data_platform.parts import defs as parts_defs
from data_platform.parts.supplier_server import PART_NAMES, synthetic_catalog
from data_platform.resources import (
    AwsSessionResource,
    ObjectStoreResource,
    PostgresResource,
    shared_resources,
)
from data_platform_tests.automation import AutomationTicks
from data_platform_tests.parts.conftest import PRICES_TABLE

SEOUL = ZoneInfo("Asia/Seoul")
FAST_DEMO = """code = "demo"
base_url = "http://127.0.0.1:1"
car_types = ["아반떼", "쏘나타"]
max_pages = 3
timeout_seconds = 2
max_retry_rounds = 1
backoff_seconds = 0.01
round_delay_seconds = 0
"""


def materialize_day(
    supplier, webhook, pg_url: str, tmp_path: Path, **kwargs
) -> dg.ExecuteInProcessResult:
    """Every stage of 2026-11-20 for the demo supplier, served by a local supplier."""
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=2, items_per_page=10))
    suppliers_dir = tmp_path / "suppliers"
    suppliers_dir.mkdir()
    (suppliers_dir / "demo.toml").write_text(FAST_DEMO)
    definitions = parts_defs.defs(["demo"])
    resources = {
        "parts": parts_defs.PartsResource(
            suppliers_dir=str(suppliers_dir),
            base_urls={"demo": server.base_url},
            slack_webhook_url=webhook.url,
        ),
        "postgres": PostgresResource(url=pg_url),
        "raw_store": ObjectStoreResource(url=str(tmp_path / "raw"), aws=AwsSessionResource()),
    }
    assets = [definitions.get_assets_def(parts_defs.asset_key(s)) for s in parts_defs.STAGES]
    return dg.materialize(assets, partition_key="2026-11-20|demo", resources=resources, **kwargs)


def test_a_day_materializes_every_stage(supplier, webhook, pg_url, tmp_path: Path) -> None:
    result = materialize_day(supplier, webhook, pg_url, tmp_path)

    assert result.success
    by_asset = {
        key.path[-1].removeprefix("parts_"): event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if (key := event.asset_key)
    }
    assert by_asset["pages"]["succeeded"].value == 4
    assert by_asset["prices"]["skipped"].value is False
    upserted = by_asset["prices"]["dagster/row_count"].value
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), min(extracted_at)::text FROM parts_prices")
        assert cur.fetchone() == (upserted, "2026-11-20")
    assert upserted == 20  # 10 part names x 2 car types
    parquet = by_asset["price_ranges"]["dagster/uri"].value
    assert parquet == f"{tmp_path / 'raw'}/mart/parts/demo/date=2026-11-20/prices.parquet"
    assert Path(parquet).is_file()
    assert len(webhook.texts) == 2 and f"{upserted} rows upserted" in webhook.texts[1]


def test_a_table_refusing_the_prices_fails_the_step_without_values(
    supplier, webhook, pg_url, tmp_path: Path
) -> None:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            PRICES_TABLE.format(name_type="text", check="CONSTRAINT low CHECK (max_price < 0)")
        )
    conn.close()
    instance = dg.DagsterInstance.ephemeral()

    result = materialize_day(
        supplier, webhook, pg_url, tmp_path, instance=instance, raise_on_error=False
    )

    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_failure_data.error.message.startswith(
        "dagster._core.definitions.events.Failure: cannot upsert prices into parts_prices: "
        "check_violation (SQLSTATE 23514), table public.parts_prices, constraint low: "
    )
    events = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
    assert any("constraint low" in e for e in events)
    for part in PART_NAMES:
        escaped = part.encode("unicode_escape").decode()
        assert not [e for e in events if part in e or escaped in e], part


def _with_shared_resources(suppliers: list[str]) -> dg.Definitions:
    return dg.Definitions.merge(
        parts_defs.defs(suppliers), dg.Definitions(resources=shared_resources())
    )


def _requested(ticks_at: list[datetime]) -> list[set[str | None]]:
    """The partitions requested at each evaluation time, in turn (the same for every stage)."""
    keys = [parts_defs.asset_key(stage) for stage in parts_defs.STAGES]
    ticks = AutomationTicks(_with_shared_resources(["demo", "other"]), *keys)
    requested = []
    for at in ticks_at:
        by_stage = ticks.tick(at)
        partitions = set().union(*by_stage.values())
        assert not by_stage or by_stage == {key: partitions for key in keys}  # all six stages
        requested.append(partitions)
    return requested


def test_0200_seoul_requests_every_stage_of_the_latest_day_for_every_supplier() -> None:
    day = datetime(2026, 11, 20, 1, 50, tzinfo=SEOUL)
    requested = _requested([day, day + timedelta(minutes=20), day + timedelta(minutes=30)])
    assert requested == [set(), {"2026-11-20|demo", "2026-11-20|other"}, set()]


def test_missed_days_are_not_caught_up() -> None:
    day = datetime(2026, 11, 20, 1, 50, tzinfo=SEOUL)
    # the daemon was down for three days: only the latest day is requested
    requested = _requested([day, day + timedelta(days=3, minutes=40)])  # back at 02:30
    assert requested == [set(), {"2026-11-23|demo", "2026-11-23|other"}]


def test_prices_table_metadata_pool_and_freshness() -> None:
    definitions = parts_defs.defs(["demo"])
    prices = definitions.get_assets_def(parts_defs.asset_key("prices"))
    spec = prices.specs_by_key[prices.key]
    assert spec.metadata["dagster/table_name"] == parts_defs.PRICES_TABLE
    columns = [c.name for c in spec.metadata["dagster/column_schema"].columns]
    assert columns[:2] == ["part_official_name", "car_type"]
    assert prices.op.pool == "postgres_platform"
    assert isinstance(spec.freshness_policy, dg.FreshnessPolicy)
    requests = definitions.get_assets_def(parts_defs.asset_key("requests"))
    assert requests.dependency_keys == {parts_defs.site_key("demo")}


def test_failure_sensor_posts_the_run_link(webhook) -> None:
    @dg.asset(key=parts_defs.asset_key("requests"))
    def broken() -> None:
        raise RuntimeError("supplier down")

    @dg.asset(key="elsewhere")
    def other() -> None:
        raise RuntimeError("not parts")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    unrelated = dg.materialize([other], instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    sensor = _with_shared_resources(["demo"]).resolve_sensor_def(parts_defs.SENSOR_NAME)
    parts = parts_defs.PartsResource(slack_webhook_url=webhook.url, dagit_url="http://dagit:3000/")
    context = dg.build_run_status_sensor_context(
        sensor_name=parts_defs.SENSOR_NAME,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"parts": parts},
    ).for_run_failure()

    sensor(context)
    failed = next(e for e in unrelated.all_events if e.event_type_value == "PIPELINE_FAILURE")
    with dg.build_run_status_sensor_context(
        sensor_name=parts_defs.SENSOR_NAME,
        dagster_event=failed,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(unrelated.run_id),
        resources={"parts": parts},
    ) as other_context:
        sensor(other_context.for_run_failure())  # not a parts run: nothing posted

    assert len(webhook.texts) == 1
    assert f"http://dagit:3000/runs/{result.run_id}" in webhook.texts[0]
    assert "failed" in webhook.texts[0]
