"""The Dagster side: a whole day materialized, the schedule's choice of day, the failure sensor."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg2

from data_platform.parts import defs as parts_defs
from data_platform.parts.supplier_server import synthetic_catalog
from data_platform.resources import (
    AwsSessionResource,
    ObjectStoreResource,
    PostgresResource,
    shared_resources,
)

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


def test_a_day_materializes_every_stage(supplier, webhook, pg_url, tmp_path: Path) -> None:
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

    result = dg.materialize(
        assets,
        partition_key="2026-11-20|demo",
        resources=resources,
    )

    assert result.success
    by_asset = {
        event.asset_key.path[-1]: event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert by_asset["pages"]["succeeded"].value == 4
    assert by_asset["prices"]["skipped"].value is False
    upserted = by_asset["prices"]["rows_upserted"].value
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), min(extracted_at)::text FROM parts_prices")
        assert cur.fetchone() == (upserted, "2026-11-20")
    assert upserted == 20  # 10 part names x 2 car types
    assert len(webhook.texts) == 2 and f"{upserted} rows upserted" in webhook.texts[1]


def _with_shared_resources(suppliers: list[str]) -> dg.Definitions:
    return dg.Definitions.merge(
        parts_defs.defs(suppliers), dg.Definitions(resources=shared_resources())
    )


def _tick(scheduled: datetime) -> dg.SkipReason | list[dg.RunRequest]:
    schedule = _with_shared_resources(["demo", "other"]).resolve_schedule_def(
        parts_defs.SCHEDULE_NAME
    )
    with dg.build_schedule_context(scheduled_execution_time=scheduled) as context:
        return schedule(context)


def test_schedule_targets_only_the_latest_day_for_every_supplier() -> None:
    # A tick within STALE_TICK of now whatever the hour the suite runs at (a fixed 02:00 tick is
    # stale from 14:00 Seoul time on and would be skipped).
    tick = datetime.now(SEOUL).replace(second=0, microsecond=0) - timedelta(hours=1)

    requests = _tick(tick)

    day = tick.date().isoformat()
    assert [(r.partition_key, r.run_key) for r in requests] == [
        (f"{day}|demo", f"{day}|demo"),
        (f"{day}|other", f"{day}|other"),
    ]
    schedule = _with_shared_resources(["demo"]).resolve_schedule_def(parts_defs.SCHEDULE_NAME)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "Asia/Seoul")


def test_schedule_skips_missed_ticks_instead_of_catching_up() -> None:
    missed = datetime.now(SEOUL).replace(hour=2, minute=0) - timedelta(days=3)

    result = _tick(missed)

    assert isinstance(result, dg.SkipReason)
    assert "no catch-up" in (result.skip_message or "")


def test_failure_sensor_posts_the_run_link(webhook) -> None:
    @dg.op
    def broken() -> None:
        raise RuntimeError("supplier down")

    @dg.job
    def failing() -> None:
        broken()

    instance = dg.DagsterInstance.ephemeral()
    result = failing.execute_in_process(instance=instance, raise_on_error=False)
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

    assert len(webhook.texts) == 1
    assert f"http://dagit:3000/runs/{result.run_id}" in webhook.texts[0]
    assert "failed" in webhook.texts[0]
