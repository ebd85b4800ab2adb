"""The day's stages for one supplier, shared by the CLI (`run_all`) and the Dagster assets (one
method each). Stages hand their numbers on through small JSON files next to the raw pages
(`parts/<supplier>/date=D/stages/<stage>.json`), so each stage can run in its own process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from data_platform.core.objectstore import ObjectNotFound, ObjectStore
from data_platform.core.postgres import PostgresSettings, connection
from data_platform.parts import failed_urls
from data_platform.parts.config import SupplierConfig
from data_platform.parts.crawler import CrawlResult, FetchOutcome, crawl
from data_platform.parts.errors import PartsError
from data_platform.parts.load import upsert_prices
from data_platform.parts.notify import Notifier
from data_platform.parts.page_requests import (
    PageRequest,
    day_prefix,
    mart_key,
    page_key,
    pages_prefix,
    plan_requests,
    requests_from_json,
    requests_key,
    requests_to_json,
)
from data_platform.parts.report import DayReport, crawl_summary, final_report
from data_platform.parts.transform import (
    parquet_bytes,
    price_table,
    read_offers,
    read_price_parquet,
)

STAGES = ("crawl", "heal", "transform", "load")
TIMEZONE = "Asia/Seoul"  # the suppliers' day, and the day of the Dagster partitions


def today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


@dataclass
class DayRun:
    config: SupplierConfig
    day: date
    raw_store: ObjectStore
    mart_store: ObjectStore
    postgres: str | PostgresSettings
    notifier: Notifier
    sleep: Callable[[float], None] = time.sleep
    on_outcome: Callable[[FetchOutcome], None] | None = None

    @property
    def supplier(self) -> str:
        return self.config.code

    def write_requests(self) -> list[PageRequest]:
        if self.day > today():  # prices of a day that has not come would be today's, mislabelled
            raise PartsError(
                f"{self.day} is in the future (today is {today()} in {TIMEZONE}): "
                "run a day that has begun"
            )
        requests = plan_requests(self.config)
        self.raw_store.put(requests_key(self.supplier, self.day), requests_to_json(requests))
        return requests

    def read_requests(self) -> list[PageRequest]:
        key = requests_key(self.supplier, self.day)
        try:
            data = self.raw_store.get(key)
        except ObjectNotFound:
            raise PartsError(
                f"no request list at {key}: materialize parts/requests for {self.day} first"
            ) from None
        return requests_from_json(data, key)

    def crawl(self, requests: list[PageRequest]) -> DayReport:
        """Fetch the pages, keep every body, record what still fails, send the summary."""
        with connection(self.postgres) as conn:
            failed_urls.ensure_table(conn)
        result = self._fetch(requests, follow_pages=True)
        with connection(self.postgres) as conn:
            failed_urls.record_outcomes(conn, self.day, self.supplier, result.outcomes, False)
        report = self._report(
            requests=len(result.outcomes),
            succeeded=len(result.succeeded),
            failed=len(result.failed),
        )
        self._save_stage("crawl", report, ("requests", "succeeded", "failed"))
        self.notifier.send(crawl_summary(report))
        return report

    def heal(self) -> DayReport:
        """Up to `max_retry_rounds` rounds over the day's failed URLs (after a pause each)."""
        healed = rounds = 0
        for round_number in range(1, self.config.max_retry_rounds + 1):
            failing = self.still_failing()
            if not failing:
                break
            self.sleep(self.config.round_delay_seconds)
            result = self._fetch([f.request for f in failing], follow_pages=False)
            with connection(self.postgres) as conn:
                failed_urls.record_outcomes(conn, self.day, self.supplier, result.outcomes, True)
            healed += len(result.succeeded)
            rounds = round_number
        report = self._report(healed=healed, rounds=rounds, **self._failing_json())
        self._save_stage(
            "heal", report, ("healed", "rounds", "still_failing", "unconfigured_failing")
        )
        return report

    def transform(self) -> DayReport:
        """Price ranges to the mart as Parquet; an empty result removes the day's file."""
        offers = read_offers(
            self.raw_store, pages_prefix(self.supplier, self.day), self.config.parse_function()
        )
        table = price_table(offers, self.day)
        key = mart_key(self.supplier, self.day)
        skipped = table.frame.is_empty()
        if skipped:
            if self.mart_store.exists(key):
                self.mart_store.delete(key)
        else:
            self.mart_store.put(key, parquet_bytes(table.frame))
        report = self._report(
            pages=table.pages,
            offers=table.offers,
            dropped=table.dropped_total,
            dropped_by_reason=table.dropped,
            duplicate_urls=table.duplicate_urls,
            price_rows=table.frame.height,
            skipped=skipped,
        )
        self._save_stage(
            "transform",
            report,
            (
                "pages",
                "offers",
                "dropped",
                "dropped_by_reason",
                "duplicate_urls",
                "price_rows",
                "skipped",
            ),
        )
        return report

    def load(self) -> DayReport:
        """Upsert the mart file; no file (an empty day) loads nothing and deletes nothing."""
        try:
            frame = read_price_parquet(self.mart_store.get(mart_key(self.supplier, self.day)))
        except ObjectNotFound:
            frame = None
        if frame is None or frame.is_empty():
            report = self._report(skipped=True)
        else:
            with connection(self.postgres) as conn:
                report = self._report(rows_upserted=upsert_prices(conn, frame))
        self._save_stage("load", report, ("rows_upserted", "skipped"))
        return report

    def report(self) -> DayReport:
        """Merge the stages' numbers with the URLs failing now, and send the final report."""
        values: dict[str, Any] = {}
        for stage in STAGES:
            key = day_prefix(self.supplier, self.day) + f"stages/{stage}.json"
            try:
                values.update(json.loads(self.raw_store.get(key)))
            except ObjectNotFound:
                continue
        values.update(self._failing_json())
        report = self._report(**values)
        self.notifier.send(final_report(report))
        return report

    def run_all(self) -> DayReport:
        self.crawl(self.write_requests())
        self.heal()
        self.transform()
        self.load()
        return self.report()

    def still_failing(self) -> list[failed_urls.FailedUrl]:
        """The day's failing URLs of the car types the config lists now."""
        return self._failing()[0]

    def _failing(self) -> tuple[list[failed_urls.FailedUrl], int]:
        with connection(self.postgres) as conn:
            rows = failed_urls.list_failed(conn, self.day, self.supplier)
        return failed_urls.configured_only(rows, {self.supplier: self.config.car_types})

    def _failing_json(self) -> dict[str, Any]:
        failing, left_out = self._failing()
        return {
            "still_failing": [
                {"url": f.url, "status": f.status, "error": f.error, "attempts": f.attempts}
                for f in failing
            ],
            "unconfigured_failing": left_out,
        }

    def _fetch(self, requests: list[PageRequest], follow_pages: bool) -> CrawlResult:
        async def save(request: PageRequest, body: bytes) -> None:
            key = page_key(self.supplier, self.day, request)
            await asyncio.to_thread(self.raw_store.put, key, body)

        return crawl(self.config, requests, save, follow_pages, self.on_outcome)

    def _report(self, **values: Any) -> DayReport:
        values.pop("supplier", None)
        values.pop("day", None)
        return DayReport(self.supplier, self.day.isoformat(), **values)

    def _save_stage(self, stage: str, report: DayReport, names: tuple[str, ...]) -> None:
        data = {name: getattr(report, name) for name in names}
        key = day_prefix(self.supplier, self.day) + f"stages/{stage}.json"
        self.raw_store.put(key, json.dumps(data, ensure_ascii=False).encode())
