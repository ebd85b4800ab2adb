"""Offer rows from the day's stored pages → one price range per (part_official_name, car_type).

Rules: names and car types get Unicode NFKC, surrounding whitespace stripped and inner runs
collapsed to one space; a price is an int or a string with optional ₩, 원, KRW, commas and spaces.
Rows with no name, no car type, an unparsable price or a price <= 0 are dropped and counted by
reason; offers sharing a url count once (the first in page order). avg_price is rounded half up.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from data_platform.core.objectstore import ObjectStore
from data_platform.parts.config import Parser, json_listing
from data_platform.parts.errors import PartsError

if TYPE_CHECKING:
    import polars as pl

PRICE_COLUMNS = (
    "part_official_name",
    "car_type",
    "min_price",
    "max_price",
    "avg_price",
    "offer_count",
    "extracted_at",
)
READ_THREADS = 16
_PRICE_NOISE = r"(?i)krw|[₩원,\s]"


@dataclass(frozen=True)
class OfferPages:
    """The day's pages as NDJSON, one `{"items": [...]}` line per page (polars parses and
    flattens them natively), and each page's car type from its key (the fallback for items
    without one)."""

    ndjson: bytes
    car_types: list[str]

    @property
    def pages(self) -> int:
        return len(self.car_types)


@dataclass(frozen=True)
class PriceTable:
    frame: pl.DataFrame  # PRICE_COLUMNS, sorted by name and car type
    offers: int
    dropped: dict[str, int]
    duplicate_urls: int
    pages: int

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


def read_offers(store: ObjectStore, prefix: str, parse: Parser) -> OfferPages:
    """Every stored page under `prefix` (in key order), parsed with the supplier's parser."""
    keys = sorted(info.key for info in store.list(prefix) if info.key.endswith(".json"))
    lines: list[bytes] = []
    car_types: list[str] = []
    with ThreadPoolExecutor(READ_THREADS) as pool:
        for key, body in zip(keys, pool.map(store.get, keys), strict=True):
            try:
                items = parse(body).items
            except Exception as exc:  # any parser error means the same thing
                raise PartsError(
                    f"stored page {key} no longer parses ({exc}); delete it or crawl the day again"
                ) from None
            if parse is json_listing:
                # the body itself (validated above); newlines in valid JSON are only whitespace
                body = body.removeprefix(b"\xef\xbb\xbf")
                lines.append(body.replace(b"\n", b" ").replace(b"\r", b" "))
            else:
                lines.append(json.dumps({"items": items}, ensure_ascii=False, default=str).encode())
            car_types.append(_car_type_of(key))
    return OfferPages(b"\n".join(lines) + b"\n" if lines else b"", car_types)


def _car_type_of(key: str) -> str:
    segment = next((p for p in key.split("/") if p.startswith("car_type=")), "car_type=")
    return segment.removeprefix("car_type=").replace("%2F", "/").replace("%25", "%")


def _clean_text(column: str) -> pl.Expr:
    import polars as pl

    cleaned = pl.col(column).str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(cleaned.str.len_chars() > 0).then(cleaned)


def price_table(offers: OfferPages, day: date) -> PriceTable:
    import polars as pl

    item = pl.Struct({"name": pl.String, "car_type": pl.String, "price": pl.String,
                      "url": pl.String})  # fmt: skip
    schema = {"items": pl.List(item)}
    pages = (
        pl.read_ndjson(io.BytesIO(offers.ndjson), schema=schema)
        if offers.ndjson
        else pl.DataFrame(schema=schema)
    )
    # numbers and booleans in string fields arrive as their text ("15000", "true")
    raw = (
        pages.with_columns(pl.Series("page_car_type", offers.car_types, dtype=pl.String))
        .explode("items", empty_as_null=False)
        .unnest("items")
        .with_columns(pl.coalesce("car_type", "page_car_type").alias("car_type"))
        .with_row_index("seq")
    )
    price_text = pl.col("price").str.normalize("NFKC").str.replace_all(_PRICE_NOISE, "")
    cleaned = raw.select(
        "seq",
        _clean_text("name").alias("part_official_name"),
        _clean_text("car_type").alias("car_type"),
        pl.when(price_text.str.contains(r"^-?\d{1,18}$"))
        .then(price_text.cast(pl.Int64, strict=False))
        .alias("price"),
        pl.col("url").str.strip_chars(),
    )
    reason = (
        pl.when(pl.col("part_official_name").is_null())
        .then(pl.lit("no_name"))
        .when(pl.col("car_type").is_null())
        .then(pl.lit("no_car_type"))
        .when(pl.col("price").is_null())
        .then(pl.lit("unparsable_price"))
        .when(pl.col("price") <= 0)
        .then(pl.lit("price_not_positive"))
    )
    judged = cleaned.with_columns(reason.alias("reason"))
    counts = judged.group_by("reason").len().drop_nulls("reason")
    dropped = {row["reason"]: row["len"] for row in counts.sort("reason").iter_rows(named=True)}
    valid = judged.filter(pl.col("reason").is_null())
    # offers without a url cannot be matched to another one: each counts
    unique = valid.with_columns(
        pl.coalesce("url", pl.format("\x00{}", "seq")).alias("identity")
    ).unique("identity", keep="first", maintain_order=True)
    frame = (
        unique.group_by("part_official_name", "car_type")
        .agg(
            pl.col("price").min().alias("min_price"),
            pl.col("price").max().alias("max_price"),
            pl.col("price").sum().alias("price_sum"),
            pl.len().cast(pl.Int64).alias("offer_count"),
        )
        .with_columns(
            # exact integer half-up rounding of sum / count
            (
                (2 * pl.col("price_sum") + pl.col("offer_count")) // (2 * pl.col("offer_count"))
            ).alias("avg_price"),
            pl.lit(day, dtype=pl.Date).alias("extracted_at"),
        )
        .select(PRICE_COLUMNS)
        .sort("part_official_name", "car_type")
    )
    return PriceTable(frame, raw.height, dropped, valid.height - unique.height, offers.pages)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def read_price_parquet(data: bytes) -> pl.DataFrame:
    import polars as pl

    return pl.read_parquet(io.BytesIO(data))
