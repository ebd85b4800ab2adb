"""The crawler against a real local supplier: retries, pacing of pages, what counts as failed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from data_platform.parts.config import load_supplier
from data_platform.parts.crawler import crawl, retry_after_seconds
from data_platform.parts.page_requests import PageRequest, plan_requests
from data_platform.parts.supplier_server import Reply, synthetic_catalog
from data_platform_tests.parts.conftest import fast_config


def _crawl(config, requests=None, follow_pages=True):
    saved: dict[tuple[str, int], bytes] = {}

    async def save(request: PageRequest, body: bytes) -> None:
        await asyncio.sleep(0)
        saved[(request.car_type, request.page)] = body

    result = crawl(config, requests or plan_requests(config), save, follow_pages)
    return result, saved


def test_transient_failures_end_as_successes(supplier) -> None:
    server = supplier(synthetic_catalog(["아반떼", "쏘나타"], pages=3, items_per_page=4))
    server.script("아반떼", 1, Reply(500), Reply(500))
    server.script("아반떼", 2, Reply(429, retry_after="1"))
    server.script("쏘나타", 1, Reply(200, delay=1.0))  # longer than the 0.5 s timeout
    server.script("쏘나타", 2, Reply(502), Reply(503))
    config = fast_config(server)

    result, saved = _crawl(config)

    assert result.failed == []
    attempts = {(o.request.car_type, o.request.page): o.attempts for o in result.outcomes}
    assert attempts == {
        ("아반떼", 1): 3, ("아반떼", 2): 2, ("아반떼", 3): 1,
        ("쏘나타", 1): 2, ("쏘나타", 2): 3, ("쏘나타", 3): 1,
    }  # fmt: skip
    assert set(saved) == set(attempts)
    assert server.hits[("아반떼", 1)] == 3


def test_pages_after_has_next_false_are_not_requested(supplier) -> None:
    server = supplier(synthetic_catalog(["그랜저"], pages=2, items_per_page=3))
    config = fast_config(server, max_pages=5)

    result, _saved = _crawl(config)

    assert [o.request.page for o in result.outcomes] == [1, 2]
    assert set(server.hits) == {("그랜저", 1), ("그랜저", 2)}


def test_failures_are_reported_with_attempts_and_do_not_stop_the_car_type(supplier) -> None:
    server = supplier(synthetic_catalog(["k5"], pages=3, items_per_page=2))
    server.fail_always("k5", 2, Reply(503))
    server.script("k5", 3, Reply(404))  # not retried: retrying a 404 cannot help
    config = fast_config(server)

    result, saved = _crawl(config)

    failed = {o.request.page: (o.status, o.attempts) for o in result.failed}
    assert failed == {2: (503, 3), 3: (404, 1)}
    assert set(saved) == {("k5", 1), ("k5", 4)}  # page 4: empty, has_next false: the end


def test_unparsable_page_fails_without_being_stored(supplier, tmp_path) -> None:
    server = supplier({"k3": [[{"name": "x", "price": 1, "url": "u"}]]})
    (tmp_path / "shop.py").write_text(
        "import json\n\ndef loads(body):\n    return json.loads(body)\n"
    )
    (tmp_path / "shop.toml").write_text(
        f'code = "shop"\nbase_url = "{server.base_url}"\ncar_types = ["k3"]\nmax_pages = 1\n'
        'parser = "shop:loads"\n'  # a parser returning no Listing
    )
    config = load_supplier(tmp_path / "shop.toml")

    result, saved = _crawl(config)

    assert ("k5", 1) not in saved
    assert "unparsable page" in (result.failed[0].error or "")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3", cap=30) == 3
    assert retry_after_seconds("120", cap=30) == 30
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", cap=30) == 0
    assert retry_after_seconds("soon", cap=30) is None
    assert retry_after_seconds(None, cap=30) is None


def test_a_redirect_loop_is_a_failed_url(supplier) -> None:
    server = supplier(synthetic_catalog(["k5"], pages=2, items_per_page=2))
    server.fail_always("k5", 1, Reply(302, location="/parts?car_type=k5&page=1"))
    config = fast_config(server)

    result, saved = _crawl(config)

    [failed] = result.failed
    assert (failed.request.page, failed.attempts) == (1, 1)  # retrying a loop cannot help
    assert (failed.error or "").startswith("TooManyRedirects")
    assert set(saved) == {("k5", 2)}


def test_timeout_bounds_the_whole_request_even_when_the_body_trickles(supplier) -> None:
    server = supplier(synthetic_catalog(["k5"], pages=1, items_per_page=2))
    server.fail_always("k5", 1, Reply(200, trickle=0.05))  # ~200 bytes: ~10 s, a byte per 50 ms
    config = fast_config(server, timeout_seconds=0.5, max_attempts=1)

    started = time.monotonic()
    result, saved = _crawl(config)
    took = time.monotonic() - started

    [failed] = result.failed
    assert failed.status is None and "0.5 s" in (failed.error or "")
    assert took < 2.0, f"the request ran {took:.1f} s against a 0.5 s timeout"
    assert ("k5", 1) not in saved


def test_retry_after_dates_in_minus_0000_are_utc_on_any_host(monkeypatch) -> None:
    # RFC 5322's "-0000" means UTC; the stdlib returns it as a naive datetime
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        in_ten = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=10)
        header = format_datetime(in_ten)  # a naive datetime formats with "-0000"
        assert header.endswith("-0000")
        assert 8 < retry_after_seconds(header, cap=30) <= 10
    finally:
        monkeypatch.undo()
        time.tzset()
