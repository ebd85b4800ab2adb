"""Concurrent page fetching with httpx: bounded in-flight requests, a requests-per-second pace,
timeouts, and retries with exponential backoff + jitter on 5xx, 429 (honouring Retry-After),
timeouts and network errors. Other 4xx and unparsable bodies fail at once (retrying cannot help).

Pages of one car type are fetched in order, so nothing after a `has_next: false` page is asked
for; car types run side by side. A page that fails does not stop its car type: the pages after it
are still fetched and the failed one waits for the self-healing rounds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from itertools import groupby

import httpx

from data_platform.parts.config import Parser, SupplierConfig
from data_platform.parts.page_requests import PageRequest

log = logging.getLogger(__name__)

USER_AGENT = "data-platform-parts/1.0"
SavePage = Callable[[PageRequest, bytes], Awaitable[None]]


@dataclass(frozen=True)
class FetchOutcome:
    request: PageRequest
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    has_next: bool = False
    items: int = 0


@dataclass(frozen=True)
class CrawlResult:
    outcomes: list[FetchOutcome]
    seconds: float

    @property
    def succeeded(self) -> list[FetchOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[FetchOutcome]:
        return [o for o in self.outcomes if not o.ok]


class Pace:
    """Spaces request starts evenly at `per_second` (no bursts, unlike a full token bucket)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def backoff_delay(config: SupplierConfig, attempt: int) -> float:
    """Exponential with "equal jitter": half the step is fixed, half random, capped."""
    step = min(config.max_backoff_seconds, config.backoff_seconds * 2 ** (attempt - 1))
    return step / 2 + random.uniform(0, step / 2)


def retry_after_seconds(value: str | None, cap: float) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" (RFC 5322: UTC, source zone unknown) comes back naive
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


class Crawler:
    def __init__(self, config: SupplierConfig, save: SavePage, parse: Parser | None = None) -> None:
        self.config = config
        self.save = save
        self.parse = parse or config.parse_function()
        self.on_outcome: Callable[[FetchOutcome], None] = lambda outcome: None

    async def crawl(self, requests: Iterable[PageRequest], follow_pages: bool) -> CrawlResult:
        """Fetch `requests`; with `follow_pages`, each car type in page order up to `has_next`."""
        started = time.monotonic()
        limits = httpx.Limits(
            max_connections=self.config.concurrency,
            max_keepalive_connections=self.config.concurrency,
        )
        self._semaphore = asyncio.Semaphore(self.config.concurrency)
        self._pace = Pace(self.config.requests_per_second)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_seconds),
            limits=limits,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
        ) as client:
            ordered = sorted(requests)
            if follow_pages:
                groups = [list(g) for _, g in groupby(ordered, key=lambda r: r.car_type)]
                results = await asyncio.gather(*(self._pages(client, g) for g in groups))
                outcomes = [o for group in results for o in group]
            else:
                outcomes = list(await asyncio.gather(*(self._fetch(client, r) for r in ordered)))
        return CrawlResult(outcomes, time.monotonic() - started)

    async def _pages(
        self, client: httpx.AsyncClient, pages: list[PageRequest]
    ) -> list[FetchOutcome]:
        outcomes = []
        for request in pages:
            outcome = await self._fetch(client, request)
            outcomes.append(outcome)
            if outcome.ok and not outcome.has_next:
                break
        return outcomes

    async def _fetch(self, client: httpx.AsyncClient, request: PageRequest) -> FetchOutcome:
        config = self.config
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                async with self._semaphore:
                    await self._pace.wait()
                    # httpx's timeout bounds each read, so a body trickling a byte at a time
                    # would never trip it: the deadline is for the whole request
                    async with asyncio.timeout(config.timeout_seconds):
                        response = await client.get(request.url)
            except TimeoutError:
                status, retryable = None, True
                error = f"no complete answer within timeout_seconds ({config.timeout_seconds:g} s)"
            except httpx.TransportError as exc:  # timeouts, refused or reset connections
                status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
                retryable = True
            except httpx.RequestError as exc:  # a redirect loop, an undecodable body
                status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
                retryable = False
            else:
                status = response.status_code
                if response.is_success:
                    outcome = await self._keep(request, response.content, attempt, status)
                    self.on_outcome(outcome)
                    return outcome
                error = f"HTTP {status} {response.reason_phrase}".strip()
                retryable = status >= 500 or status == 429
                if status == 429:
                    header = response.headers.get("Retry-After")
                    wait = retry_after_seconds(header, config.max_backoff_seconds)
            if not retryable or attempt >= config.max_attempts:
                outcome = FetchOutcome(request, False, attempt, status, error)
                log.info("%s failed after %d attempt(s): %s", request.url, attempt, error)
                self.on_outcome(outcome)
                return outcome
            log.debug("%s: %s; retry %d", request.url, error, attempt)
            await asyncio.sleep(wait if wait is not None else backoff_delay(config, attempt))

    async def _keep(
        self, request: PageRequest, body: bytes, attempts: int, status: int
    ) -> FetchOutcome:
        try:
            listing = self.parse(body)
            has_next, items = bool(listing.has_next), len(listing.items)
        except Exception as exc:  # a user parser may raise anything; the page fails
            return FetchOutcome(request, False, attempts, status, f"unparsable page: {exc!r}")
        try:
            await self.save(request, body)
        except Exception as exc:  # a store error of one page must not abort the other pages
            log.warning("%s fetched but not stored: %s", request.url, exc)
            return FetchOutcome(request, False, attempts, status, f"page not stored: {exc}")
        return FetchOutcome(request, True, attempts, status, None, has_next, items)


def crawl(
    config: SupplierConfig,
    requests: Iterable[PageRequest],
    save: SavePage,
    follow_pages: bool = True,
    on_outcome: Callable[[FetchOutcome], None] | None = None,
) -> CrawlResult:
    """Run one crawl to completion (blocking)."""
    crawler = Crawler(config, save)
    if on_outcome is not None:
        crawler.on_outcome = on_outcome
    return asyncio.run(crawler.crawl(requests, follow_pages))
