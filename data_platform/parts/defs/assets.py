"""Parts assets: six stages under `parts/parts_<stage>`, partitioned day (Asia/Seoul) x
supplier, downstream of each supplier's site (external). The work happens in `pipeline.DayRun`;
this module only maps it onto Dagster."""

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from data_platform.dagster_common import (
    OWNER,
    POSTGRES_POOL,
    external_asset,
    failure_on,
    postgres_table,
    row_count,
    table_schema,
    tags,
    uri,
)
from data_platform.parts.defs.automation import CONDITION, PRICES_FRESHNESS, TIMEZONE
from data_platform.parts.defs.resources import PartsResource
from data_platform.parts.errors import PartsError
from data_platform.resources import ObjectStoreResource, PostgresResource

if TYPE_CHECKING:
    from data_platform.parts.pipeline import DayRun

FIRST_DAY = "2026-01-01"
RETRY = dg.RetryPolicy(
    max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
STAGES = ("requests", "pages", "healed_pages", "price_ranges", "prices", "report")
PRICES_TABLE = "public.parts_prices"
PRICES_COLUMNS = (  # parts.load's table
    ("part_official_name", "text"),
    ("car_type", "text"),
    ("min_price", "bigint"),
    ("max_price", "bigint"),
    ("avg_price", "bigint"),
    ("offer_count", "integer"),
    ("extracted_at", "date"),
    ("updated_at", "timestamptz"),
)


STAGE_LAYERS = {
    "requests": "crawl",
    "pages": "crawl",
    "healed_pages": "crawl",
    "price_ranges": "mart",
    "prices": "mart",
    "report": "report",
}
STAGE_METADATA = {
    # price_ranges' Parquet file has the table's columns but `updated_at`
    "price_ranges": {"dagster/column_schema": table_schema(PRICES_COLUMNS[:-1])},
    "prices": postgres_table(PRICES_TABLE, PRICES_COLUMNS),
}


def asset_key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["parts", f"parts_{stage}"])


def site_key(supplier: str) -> dg.AssetKey:
    return dg.AssetKey(["parts", "suppliers", f"{supplier}_site"])


def parts_partitions(suppliers: Sequence[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            # end_offset=1: today's partition exists, so the 02:00 run crawls today's prices
            "day": dg.DailyPartitionsDefinition(FIRST_DAY, timezone=TIMEZONE, end_offset=1),
            "supplier": dg.StaticPartitionsDefinition(list(suppliers)),
        }
    )


def site_spec(supplier: str) -> dg.AssetSpec:
    return external_asset(
        site_key(supplier),
        domain="parts",
        layer="source",
        kind="web",
        description=f"Supplier `{supplier}`'s web site, which the crawl reads (outside the "
        "platform); its base URL is in the supplier's config.",
    )


def stage_asset(
    stage: str, partitions: dg.PartitionsDefinition, suppliers: Sequence[str]
) -> dg.AssetsDefinition:
    run_stage = STAGE_FUNCTIONS[stage]
    index = STAGES.index(stage)

    def compute(
        context: dg.AssetExecutionContext,
        parts: PartsResource,
        postgres: PostgresResource,
        raw_store: ObjectStoreResource,
    ) -> dg.MaterializeResult:
        with failure_on((PartsError,)):
            run = day_run(context, parts, postgres, raw_store)
            metadata = run_stage(run)
        if stage == "price_ranges":
            from data_platform.parts.page_requests import mart_key

            mart_url = parts.mart_store_url() or raw_store.url
            metadata.update(uri(f"{mart_url.rstrip('/')}/{mart_key(run.supplier, run.day)}"))
        return dg.MaterializeResult(metadata=metadata)

    prices = stage == "prices"
    kinds = {"price_ranges": {"parquet"}, "prices": {"postgres"}}.get(stage, {"python"})
    return dg.asset(
        key=asset_key(stage),
        deps=[asset_key(STAGES[index - 1])] if index else [site_key(s) for s in suppliers],
        partitions_def=partitions,
        retry_policy=RETRY,
        group_name="parts",
        kinds=kinds,
        owners=[OWNER],
        tags=tags("parts", STAGE_LAYERS[stage]),
        metadata=STAGE_METADATA.get(stage),
        pool=POSTGRES_POOL if prices else None,
        automation_condition=CONDITION,
        freshness_policy=PRICES_FRESHNESS if prices else None,
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
    """Pages fetched (bounded, paced, retried) into `parts/{supplier}/date=D/pages/` of the raw
    store; failures in parts_failed_urls; the summary goes to Slack."""
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
    Parquet to `parts/{supplier}/date=D/prices.parquet` of the mart store (an empty result
    removes it)."""
    report = run.transform()
    return {
        "pages": report.pages,
        "offers": report.offers,
        "dropped": report.dropped,
        "dropped_by_reason": dg.MetadataValue.json(report.dropped_by_reason),
        "duplicate_urls": report.duplicate_urls,
        **row_count(report.price_rows),
        "skipped": report.skipped,
    }


def _prices(run: "DayRun") -> dict[str, Any]:
    """parts_prices upserted (COPY to staging, one INSERT … ON CONFLICT DO UPDATE); an empty
    day is skipped: nothing loaded, nothing deleted."""
    report = run.load()
    return {**row_count(report.rows_upserted), "skipped": report.skipped}


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
