"""Dagster side of parts: six assets under `parts/` partitioned day (Asia/Seoul) × supplier, the
daily 02:00 schedule (latest day only, no catch-up), and a run-failure sensor posting the run's
Dagit link. The work happens in `pipeline.DayRun`; this module only maps it onto Dagster.
"""

import os
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from data_platform.parts.config import BUILTIN_SUPPLIERS_DIR, SupplierConfig, load_suppliers
from data_platform.resources import ObjectStoreResource, PostgresResource

if TYPE_CHECKING:
    from data_platform.parts.pipeline import DayRun

FIRST_DAY = "2026-01-01"
TIMEZONE = "Asia/Seoul"
CRON = "0 2 * * *"
JOB_NAME = "parts_daily"
SCHEDULE_NAME = "parts_daily_0200_kst"
SENSOR_NAME = "parts_run_failure_to_slack"
USER_SUPPLIERS_DIR = Path("suppliers")  # relative to where Dagster starts, like silver presets
# A tick later than this after its scheduled time is a missed day: skipped, not caught up.
STALE_TICK = timedelta(hours=12)
RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
STAGES = ("requests", "pages", "healed_pages", "price_ranges", "prices", "report")


def asset_key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["parts", stage])


def parts_partitions(suppliers: Sequence[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            # end_offset=1: today's partition exists, so the 02:00 run crawls today's prices
            "day": dg.DailyPartitionsDefinition(FIRST_DAY, timezone=TIMEZONE, end_offset=1),
            "supplier": dg.StaticPartitionsDefinition(list(suppliers)),
        }
    )


class PartsResource(dg.ConfigurableResource):
    """Parts settings. Unset fields fall back, when a run starts, to DATA_PLATFORM_MART_URL,
    DATA_PLATFORM_SLACK_WEBHOOK_URL, DATA_PLATFORM_SLACK_BOT_TOKEN (+ DATA_PLATFORM_SLACK_CHANNEL)
    and DATA_PLATFORM_DAGIT_URL (Dagster's EnvVar cannot be optional)."""

    # Settings for known supplier codes read at run time (a new supplier's code must be in the
    # built-in folder or ./suppliers when the code location loads: it is a partition).
    suppliers_dir: str | None = None
    base_urls: dict[str, str] = Field(default_factory=dict)  # code -> base_url (staging, demo)
    mart_url: str | None = None
    slack_webhook_url: str | None = None
    slack_bot_token: str | None = None
    slack_channel: str | None = None
    dagit_url: str | None = None

    def supplier(self, code: str) -> SupplierConfig:
        from data_platform.parts.errors import PartsError

        dirs = [BUILTIN_SUPPLIERS_DIR, USER_SUPPLIERS_DIR]
        if self.suppliers_dir:
            dirs.append(Path(self.suppliers_dir))
        config = load_suppliers(dirs).get(code)
        if config is None:
            raise PartsError(
                f"no supplier config with code {code!r} in {', '.join(map(str, dirs))}"
            )
        base_url = self.base_urls.get(code)
        return config.model_copy(update={"base_url": base_url}) if base_url else config

    def slack(self) -> Any:
        """The Slack notifier (webhook first, then bot token via dagster-slack), or None."""
        from data_platform.parts.notify import SlackBot, slack_notifier

        webhook = self.slack_webhook_url or os.environ.get("DATA_PLATFORM_SLACK_WEBHOOK_URL")
        if webhook:
            return slack_notifier(webhook)
        token = self.slack_bot_token or os.environ.get("DATA_PLATFORM_SLACK_BOT_TOKEN")
        if not token:
            return None
        from dagster_slack import SlackResource

        channel = self.slack_channel or os.environ.get("DATA_PLATFORM_SLACK_CHANNEL") or "#parts"
        return SlackBot(SlackResource(token=token).get_client(), channel)

    def mart_store_url(self) -> str | None:
        return self.mart_url or os.environ.get("DATA_PLATFORM_MART_URL") or None

    def run_link(self, run_id: str) -> str:
        base = (
            self.dagit_url or os.environ.get("DATA_PLATFORM_DAGIT_URL") or "http://127.0.0.1:3000"
        )
        return f"{base.rstrip('/')}/runs/{run_id}"


def defs(suppliers: Sequence[str] | None = None) -> dg.Definitions:
    """Assets, job, schedule and failure sensor; suppliers default to the config files' codes."""
    codes = sorted(suppliers if suppliers is not None else _supplier_codes())
    if not codes:
        return dg.Definitions()
    partitions = parts_partitions(codes)
    assets = [_asset(stage, partitions) for stage in STAGES]
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*[asset_key(s) for s in STAGES]),
        partitions_def=partitions,
        description="One day of one supplier: every parts stage in order.",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[daily_schedule(job, codes)],
        sensors=[failure_sensor(job)],
        resources={"parts": PartsResource()},
    )


def _supplier_codes() -> list[str]:
    return list(load_suppliers([BUILTIN_SUPPLIERS_DIR, USER_SUPPLIERS_DIR]))


def _asset(stage: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    run_stage = STAGE_FUNCTIONS[stage]
    index = STAGES.index(stage)

    def compute(
        context: dg.AssetExecutionContext,
        parts: PartsResource,
        postgres: PostgresResource,
        raw_store: ObjectStoreResource,
    ) -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata=run_stage(day_run(context, parts, postgres, raw_store))
        )

    return dg.asset(
        key=asset_key(stage),
        deps=[asset_key(STAGES[index - 1])] if index else None,
        partitions_def=partitions,
        retry_policy=RETRY,
        group_name="parts",
        kinds={"python"},
        description=(run_stage.__doc__ or "").strip(),
    )(compute)


def day_run(
    context: dg.AssetExecutionContext,
    parts: PartsResource,
    postgres: PostgresResource,
    raw_store: ObjectStoreResource,
) -> "DayRun":
    from data_platform.core.objectstore import object_store_from_url
    from data_platform.parts.notify import Fanout
    from data_platform.parts.pipeline import DayRun

    day, code = partition_of(context.partition_key)
    raw = raw_store.store()
    mart_url = parts.mart_store_url()
    mart = (
        object_store_from_url(mart_url, client_factory=lambda: raw_store.aws.client("s3"))
        if mart_url
        else raw
    )
    notifier = Fanout(context.log.info, parts.slack())
    return DayRun(parts.supplier(code), day, raw, mart, postgres.settings(), notifier)


def _requests(run: "DayRun") -> dict[str, Any]:
    """The day's page URLs (pages 1..max_pages per car type), stored as requests.json."""
    requests = run.write_requests()
    return {
        "requests": len(requests),
        "first_urls": dg.MetadataValue.json([r.url for r in requests[:5]]),
    }


def _pages(run: "DayRun") -> dict[str, Any]:
    """Pages fetched (bounded, paced, retried) into raw/parts/<supplier>/date=D/pages/; failures
    in parts_failed_urls; the summary goes to Slack."""
    report = run.crawl(run.read_requests())
    return {"requests": report.requests, "succeeded": report.succeeded, "failed": report.failed}


def _healed_pages(run: "DayRun") -> dict[str, Any]:
    """Self-healing rounds over the day's failed URLs; what still fails is reported, not fatal."""
    report = run.heal()
    return {
        "healed": report.healed,
        "rounds": report.rounds,
        "still_failing": len(report.still_failing),
        "still_failing_urls": dg.MetadataValue.json(report.still_failing[:50]),
    }


def _price_ranges(run: "DayRun") -> dict[str, Any]:
    """Offers cleaned and aggregated with polars to one row per (part, car type), written as
    Parquet to mart/parts/<supplier>/date=D/prices.parquet (an empty result removes it)."""
    report = run.transform()
    return {
        "pages": report.pages,
        "offers": report.offers,
        "dropped": report.dropped,
        "dropped_by_reason": dg.MetadataValue.json(report.dropped_by_reason),
        "duplicate_urls": report.duplicate_urls,
        "rows": report.price_rows,
        "skipped": report.skipped,
    }


def _prices(run: "DayRun") -> dict[str, Any]:
    """parts_prices upserted (COPY to staging, one INSERT … ON CONFLICT DO UPDATE); an empty
    day is skipped: nothing loaded, nothing deleted."""
    report = run.load()
    return {"rows_upserted": report.rows_upserted, "skipped": report.skipped}


def _report(run: "DayRun") -> dict[str, Any]:
    """The day's final report, sent to Slack (or the run log)."""
    from data_platform.parts.report import final_report

    report = run.report()
    return {
        "rows_upserted": report.rows_upserted,
        "skipped": report.skipped,
        "still_failing": len(report.still_failing),
        "text": dg.MetadataValue.md(f"```\n{final_report(report)}\n```"),
    }


STAGE_FUNCTIONS = {
    "requests": _requests,
    "pages": _pages,
    "healed_pages": _healed_pages,
    "price_ranges": _price_ranges,
    "prices": _prices,
    "report": _report,
}


def partition_of(key: str | dg.MultiPartitionKey) -> tuple[date, str]:
    if not isinstance(key, dg.MultiPartitionKey):
        key = parts_partitions(["any"]).get_partition_key_from_str(key)
    dims = key.keys_by_dimension
    return date.fromisoformat(dims["day"]), dims["supplier"]


def daily_schedule(job: Any, suppliers: Sequence[str]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=SCHEDULE_NAME,
        cron_schedule=CRON,
        execution_timezone=TIMEZONE,
        job=job,
        description="02:00 Asia/Seoul: today's partition of every supplier. Missed ticks are "
        "skipped, never caught up; backfill old days from Dagit.",
    )
    def parts_daily(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | list[dg.RunRequest]:
        scheduled = context.scheduled_execution_time
        now = datetime.now(ZoneInfo(TIMEZONE))
        if now - scheduled > STALE_TICK:
            return dg.SkipReason(
                f"tick of {scheduled.isoformat()} is late (now {now.isoformat()}): no catch-up; "
                "backfill that day from Dagit if needed"
            )
        day = scheduled.astimezone(ZoneInfo(TIMEZONE)).date().isoformat()
        return [
            dg.RunRequest(
                run_key=f"{day}|{code}",
                partition_key=dg.MultiPartitionKey({"day": day, "supplier": code}),
            )
            for code in suppliers
        ]

    return parts_daily


def failure_sensor(job: Any) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        monitored_jobs=[job],
        description="Posts a failed parts run (after its retries) to Slack with its Dagit link.",
    )
    def parts_failure(context: dg.RunFailureSensorContext, parts: PartsResource) -> None:
        from data_platform.parts.notify import Fanout

        run = context.dagster_run
        partition = run.tags.get("dagster/partition", "")
        text = (
            f"[parts] run {run.run_id[:8]} of {run.job_name} {partition} failed: "
            f"{context.failure_event.message or 'see the run'}\n{parts.run_link(run.run_id)}"
        )
        Fanout(context.log.warning, parts.slack()).send(text)

    return parts_failure
