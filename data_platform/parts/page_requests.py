"""The day's page requests for a supplier and where their results live in the stores.

Raw store:  parts/<supplier>/date=YYYY-MM-DD/requests.json
            parts/<supplier>/date=YYYY-MM-DD/pages/car_type=<name>/page=0001.json
Mart store: mart/parts/<supplier>/date=YYYY-MM-DD/prices.parquet
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from urllib.parse import quote

from data_platform.parts.config import SupplierConfig
from data_platform.parts.errors import PartsError


@dataclass(frozen=True, order=True)
class PageRequest:
    car_type: str
    page: int
    url: str


def plan_requests(config: SupplierConfig) -> list[PageRequest]:
    """Pages 1..max_pages of every car type; the crawl stops a car type at `has_next: false`."""
    base = config.base_url.rstrip("/")
    return [
        PageRequest(
            car_type,
            page,
            config.url_template.format(base_url=base, car_type=quote(car_type, safe=""), page=page),
        )
        for car_type in config.car_types
        for page in range(1, config.max_pages + 1)
    ]


def day_prefix(supplier: str, day: date) -> str:
    return f"parts/{supplier}/date={day.isoformat()}/"


def requests_key(supplier: str, day: date) -> str:
    return day_prefix(supplier, day) + "requests.json"


def pages_prefix(supplier: str, day: date) -> str:
    return day_prefix(supplier, day) + "pages/"


def page_key(supplier: str, day: date, request: PageRequest) -> str:
    # Only "%" and "/" are escaped, so Korean car types stay readable in the store.
    segment = request.car_type.replace("%", "%25").replace("/", "%2F")
    return f"{pages_prefix(supplier, day)}car_type={segment}/page={request.page:04d}.json"


def mart_key(supplier: str, day: date) -> str:
    return f"mart/parts/{supplier}/date={day.isoformat()}/prices.parquet"


def requests_to_json(requests: list[PageRequest]) -> bytes:
    return json.dumps([asdict(r) for r in requests], ensure_ascii=False).encode()


def requests_from_json(data: bytes, where: str) -> list[PageRequest]:
    try:
        return [PageRequest(r["car_type"], int(r["page"]), r["url"]) for r in json.loads(data)]
    except (ValueError, TypeError, KeyError) as exc:
        raise PartsError(
            f"{where} is not a request list ({exc}); materialize parts/requests for this day again"
        ) from None
