"""Every stage of a day against a real local supplier, real Postgres, moto S3 and a local
Slack webhook."""

from __future__ import annotations

import json
from datetime import date

import psycopg2
import pytest

from data_platform.core.objectstore_s3 import S3ObjectStore
from data_platform.parts.config import Listing
from data_platform.parts.notify import Fanout, SlackBot, SlackWebhook
from data_platform.parts.page_requests import mart_key
from data_platform.parts.pipeline import DayRun
from data_platform.parts.supplier_server import Reply, synthetic_catalog
from data_platform.parts.transform import PRICE_COLUMNS
from data_platform_tests.parts.conftest import fast_config

DAY = date(2026, 11, 20)


def item(name, price, url, car_type="아반떼"):
    return {"name": name, "car_type": car_type, "price": price, "seller": "s", "url": url}


MESSY = {
    "아반떼": [
        [
            item("  브레이크   패드 ", "12,300원", "u1"),
            item("브레이크 패드", "₩ 9,900", "u2", car_type=" 아반떼\t"),
            item("ＡＢＣ　필터", "15000", "u3"),  # fullwidth letters, ideographic space
            item("오일필터", 15000, "u4"),
            item("오일필터", "15000", "u4"),  # same url: counts once
            item("", "1,000원", "u5"),
            item(None, "1,000원", "u6"),
            item("와이퍼", "무료", "u7"),
            item("와이퍼", "0원", "u8"),
        ],
        [
            item("와이퍼", "-500", "u9"),
            item("와이퍼", "KRW 7,001", "u10"),
            item("와이퍼", "7,002 원", "u11"),
            item("와이퍼", "￦8,000", "u12"),  # fullwidth won sign: NFKC makes it ₩
        ],
    ],
    "쏘나타": [[item("와이퍼", 7001, "s1", "쏘나타"), item("와이퍼", "7,002", "s2", "쏘나타")]],
}
EXPECTED = [
    ("ABC 필터", "아반떼", 15000, 15000, 15000, 1),
    ("브레이크 패드", "아반떼", 9900, 12300, 11100, 2),
    ("오일필터", "아반떼", 15000, 15000, 15000, 1),
    ("와이퍼", "쏘나타", 7001, 7002, 7002, 2),  # 7001.5 rounds half up
    ("와이퍼", "아반떼", 7001, 8000, 7334, 3),
]


@pytest.fixture
def s3_store(s3_client, bucket) -> S3ObjectStore:
    return S3ObjectStore(s3_client, bucket, "raw")


def prices(pg_url: str) -> list[tuple]:
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT part_official_name, car_type, min_price, max_price, avg_price, offer_count,"
            " extracted_at, updated_at FROM parts_prices ORDER BY 1, 2, 7"
        )
        return cur.fetchall()


def day_run(config, store, pg_url, notifier=None, day=DAY) -> DayRun:
    return DayRun(config, day, store, store, pg_url, notifier or Fanout(print, None))


def test_loaded_rows_follow_the_rules_and_rerun_changes_only_updated_at(
    supplier, s3_store, pg_url, webhook, s3_client, bucket
) -> None:
    server = supplier(MESSY)
    notifier = Fanout(print, SlackWebhook(webhook.url))
    run = day_run(fast_config(server), s3_store, pg_url, notifier)

    report = run.run_all()

    first = prices(pg_url)
    assert [row[:6] for row in first] == EXPECTED
    assert {row[6] for row in first} == {DAY}
    assert (report.requests, report.succeeded, report.failed) == (3, 3, 0)
    assert report.offers == 15
    assert report.dropped_by_reason == {
        "no_name": 2, "unparsable_price": 1, "price_not_positive": 2
    }  # fmt: skip
    assert (report.dropped, report.duplicate_urls, report.rows_upserted) == (5, 1, 5)
    assert not report.skipped
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    pages = [k for k in keys if "/pages/" in k]
    assert pages == [
        "raw/parts/test/date=2026-11-20/pages/car_type=쏘나타/page=0001.json",
        "raw/parts/test/date=2026-11-20/pages/car_type=아반떼/page=0001.json",
        "raw/parts/test/date=2026-11-20/pages/car_type=아반떼/page=0002.json",
    ]
    assert "raw/mart/parts/test/date=2026-11-20/prices.parquet" in keys
    assert len(webhook.texts) == 2
    assert webhook.texts[0].endswith("3 requests, 3 succeeded, 0 failed")
    assert "5 rows upserted" in webhook.texts[1] and "no_name 2" in webhook.texts[1]

    again = run.run_all()

    second = prices(pg_url)
    assert [row[:7] for row in second] == [row[:7] for row in first]
    assert all(new[7] > old[7] for new, old in zip(second, first, strict=True))
    assert again.rows_upserted == 5
    keys_again = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys_again == keys


def test_failing_url_ends_in_table_and_report_and_healed_url_leaves(
    supplier, tmp_path, pg_url, webhook
) -> None:
    from data_platform.core.objectstore_local import LocalObjectStore

    server = supplier(synthetic_catalog(["아반떼"], pages=3, items_per_page=4))
    server.fail_always("아반떼", 2, Reply(503))
    server.script("아반떼", 3, Reply(500), Reply(500), Reply(500))  # fails the crawl, heals
    config = fast_config(server, max_attempts=3, max_retry_rounds=2)
    run = day_run(
        config, LocalObjectStore(tmp_path), pg_url, Fanout(print, SlackWebhook(webhook.url))
    )

    report = run.run_all()

    # page 3 failed at first, so page 4 (empty, has_next false) was asked for too
    assert (report.requests, report.succeeded, report.failed) == (4, 2, 2)
    assert (report.healed, report.rounds) == (1, 2)
    failing_url = f"{server.base_url}/parts?car_type=%EC%95%84%EB%B0%98%EB%96%BC&page=2"
    assert report.still_failing == [
        {"url": failing_url, "status": 503, "error": "HTTP 503 Service Unavailable", "attempts": 9}
    ]
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT day, supplier, url, status, attempts, rounds FROM parts_failed_urls")
        assert cur.fetchall() == [(DAY, "test", failing_url, 503, 9, 2)]
    assert failing_url in webhook.texts[-1] and "after 9 attempts" in webhook.texts[-1]
    assert "1 still failing" in webhook.texts[-1]
    assert report.rows_upserted > 0  # the pages that did arrive are loaded


def test_empty_day_is_skipped_without_touching_the_table(supplier, tmp_path, pg_url) -> None:
    from data_platform.core.objectstore_local import LocalObjectStore

    store = LocalObjectStore(tmp_path)
    full = supplier(synthetic_catalog(["아반떼"], pages=1, items_per_page=5))
    day_run(fast_config(full), store, pg_url, day=date(2026, 11, 19)).run_all()
    before = prices(pg_url)
    assert len(before) == 5
    empty = supplier({"아반떼": [[item("", "abc", "x"), item("필터", "0", "y")]]})
    store.put(mart_key("test", DAY), b"")  # a stale empty output file

    report = day_run(fast_config(empty), store, pg_url).run_all()

    assert report.skipped and report.rows_upserted == 0
    assert report.dropped == 2
    assert prices(pg_url) == before
    assert not store.exists(mart_key("test", DAY))


def offers_listing(body: bytes) -> Listing:
    """A supplier's own format: {"offers": [...], "more": bool}, prices in a nested field."""
    document = json.loads(body)
    items = [{**o, "price": o["cost"]["amount"]} for o in document["offers"]]
    return Listing(items, document["more"])


def test_a_custom_parser_feeds_the_same_rules(tmp_path) -> None:
    from data_platform.core.objectstore_local import LocalObjectStore
    from data_platform.parts.page_requests import PageRequest, page_key, pages_prefix
    from data_platform.parts.transform import price_table, read_offers

    store = LocalObjectStore(tmp_path)
    offers = [
        {"name": " 램프\n", "cost": {"amount": "₩1,500"}, "url": "a"},
        {"name": "램프", "cost": {"amount": 2500}, "url": "b"},
        {"name": "램프", "cost": {"amount": "free"}, "url": "c"},
    ]
    body = json.dumps({"offers": offers, "more": False}, indent=2).encode()
    store.put(page_key("shop", DAY, PageRequest("K5", 1, "u")), body)

    table = price_table(read_offers(store, pages_prefix("shop", DAY), offers_listing), DAY)

    assert table.frame.rows() == [("램프", "K5", 1500, 2500, 2000, 2, DAY)]
    assert table.dropped == {"unparsable_price": 1}


def test_bot_token_messages_go_through_chat_post_message(webhook) -> None:
    from dagster_slack import SlackResource

    client = SlackResource(token="xoxb-test").get_client()
    client.base_url = webhook.url.rsplit("/services", 1)[0] + "/api/"
    assert SlackBot(client, "#parts").send("hello")
    assert webhook.messages == [{"channel": "#parts", "text": "hello"}]


def test_a_page_the_store_refuses_becomes_a_failed_url_and_the_crawl_goes_on(
    supplier, s3_endpoint, bucket, pg_url
) -> None:
    from data_platform_tests.conftest import make_s3_client
    from data_platform_tests.s3_proxy import CountingProxy

    proxy = CountingProxy(s3_endpoint, refuse_puts_containing="car_type=쏘나타/")
    store = S3ObjectStore(make_s3_client(proxy.url), bucket, "raw")
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=2, items_per_page=3))
    run = day_run(fast_config(server, max_pages=2), store, pg_url)
    try:
        report = run.crawl(run.write_requests())
    finally:
        proxy.close()

    assert (report.requests, report.succeeded, report.failed) == (4, 2, 2)
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT car_type, page, error FROM parts_failed_urls ORDER BY page")
        rows = cur.fetchall()
    assert [(car_type, page) for car_type, page, _ in rows] == [("쏘나타", 1), ("쏘나타", 2)]
    assert all(error.startswith("page not stored:") for _, _, error in rows)
    stored = [info.key for info in store.list("parts/test/date=2026-11-20/pages/")]
    assert len(stored) == 2 and all("아반떼" in key for key in stored)


def test_failing_urls_of_a_car_type_no_longer_configured_are_left_out(
    supplier, tmp_path, pg_url
) -> None:
    from data_platform.core.objectstore_local import LocalObjectStore

    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=1, items_per_page=2))
    server.fail_always("쏘나타", 1, Reply(503))
    store = LocalObjectStore(tmp_path)
    config = fast_config(server, max_pages=1, max_retry_rounds=0)
    assert len(day_run(config, store, pg_url).run_all().still_failing) == 1
    hits = server.hits[("쏘나타", 1)]

    report = day_run(
        config.model_copy(update={"car_types": ("아반떼",), "max_retry_rounds": 2}), store, pg_url
    ).run_all()

    assert (report.still_failing, report.unconfigured_failing) == ([], 1)
    assert server.hits[("쏘나타", 1)] == hits  # not retried by the rounds either


def test_a_connection_lost_during_the_upsert_is_one_postgres_error_naming_why(pg_url) -> None:
    import polars as pl

    from data_platform.core.postgres import PostgresError, connect, connection
    from data_platform.parts.load import upsert_prices

    frame = pl.DataFrame([EXPECTED[0] + (DAY,)], orient="row", schema=list(PRICE_COLUMNS))
    with pytest.raises(PostgresError) as caught, connection(pg_url) as conn:
        with connect(pg_url) as admin, admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (conn.get_backend_pid(),))
        admin.close()
        upsert_prices(conn, frame)
    message = str(caught.value)
    assert message.startswith("cannot upsert prices into parts_prices: ")
    assert "closed the connection" in message or "terminat" in message, message
