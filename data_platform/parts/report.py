"""What a day's run did, as numbers, as JSON and as the two Slack messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_URLS_IN_MESSAGE = 10


@dataclass
class DayReport:
    supplier: str
    day: str
    requests: int = 0
    succeeded: int = 0
    failed: int = 0  # after the first crawl
    healed: int = 0  # recovered by the self-healing rounds
    rounds: int = 0
    still_failing: list[dict[str, Any]] = field(default_factory=list)
    # failing URLs of car types no longer in the config: left out of still_failing and the rounds
    unconfigured_failing: int = 0
    pages: int = 0
    offers: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    duplicate_urls: int = 0
    price_rows: int = 0
    rows_upserted: int = 0
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DayReport:
        return cls(**data)


def crawl_summary(report: DayReport) -> str:
    return (
        f"[parts] {report.supplier} {report.day} crawl: {report.requests} requests, "
        f"{report.succeeded} succeeded, {report.failed} failed"
    )


def final_report(report: DayReport) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.dropped_by_reason.items()))
    status = (
        "SKIPPED (no valid offers: nothing loaded, nothing deleted)"
        if report.skipped
        else (f"{report.rows_upserted} rows upserted into parts_prices")
    )
    lines = [
        f"[parts] {report.supplier} {report.day} report: {status}",
        f"offers {report.offers} from {report.pages} pages; dropped {report.dropped}"
        + (f" ({reasons})" if reasons else "")
        + f"; duplicate urls {report.duplicate_urls}",
        f"URLs: {report.requests} requested, {report.failed} failed at first, {report.healed} "
        f"healed in {report.rounds} round(s), {len(report.still_failing)} still failing"
        + unconfigured_note(report.unconfigured_failing),
    ]
    for item in report.still_failing[:MAX_URLS_IN_MESSAGE]:
        lines.append(f"  {item['url']}: {item['error']} after {item['attempts']} attempts")
    if len(report.still_failing) > MAX_URLS_IN_MESSAGE:
        lines.append(f"  ... and {len(report.still_failing) - MAX_URLS_IN_MESSAGE} more")
    return "\n".join(lines)


def unconfigured_note(left_out: int) -> str:
    return f" ({left_out} of car types no longer configured left out)" if left_out else ""
