"""A local supplier speaking the `json_listing` protocol, for the demo, the tests and the
benchmark: real HTTP on 127.0.0.1 (a free port), a fixed latency per request and per-page scripts
of replies (500s, 429 with Retry-After, slow answers, pages that always fail).

GET /parts?car_type=<name>&page=<n> → {"items": [...], "has_next": bool}
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Catalog = dict[str, list[list[dict[str, Any]]]]  # car type -> pages -> items


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status (200 = the real page), an optional delay before answering,
    an optional Retry-After or Location header, and an optional pause before each body byte."""

    status: int = 200
    delay: float = 0.0
    retry_after: str | None = None
    location: str | None = None
    trickle: float = 0.0


class SupplierServer:
    def __init__(self, catalog: Catalog, latency: float = 0.0) -> None:
        self.catalog = catalog
        self.latency = latency
        self.hits: Counter[tuple[str, int]] = Counter()
        self._scripts: dict[tuple[str, int], list[Reply]] = {}
        self._always: dict[tuple[str, int], Reply] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def script(self, car_type: str, page: int, *replies: Reply) -> None:
        """Answer the next requests of this page with `replies`, then normally."""
        with self._lock:
            self._scripts[(car_type, page)] = list(replies)

    def fail_always(self, car_type: str, page: int, reply: Reply) -> None:
        with self._lock:
            self._always[(car_type, page)] = reply

    def heal(self, car_type: str, page: int) -> None:
        """Stop failing this page."""
        with self._lock:
            self._always.pop((car_type, page), None)

    def next_reply(self, car_type: str, page: int) -> Reply:
        with self._lock:
            self.hits[(car_type, page)] += 1
            if (car_type, page) in self._always:
                return self._always[(car_type, page)]
            script = self._scripts.get((car_type, page))
            return script.pop(0) if script else Reply()

    def page_body(self, car_type: str, page: int) -> bytes:
        pages = self.catalog.get(car_type, [])
        items = pages[page - 1] if 1 <= page <= len(pages) else []
        return json.dumps({"items": items, "has_next": page < len(pages)}).encode()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the supplier server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, port: int = 0) -> str:
        self._server = _Server(("127.0.0.1", port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connects of a concurrent client (1 s SYN retry)


@contextmanager
def running(server: SupplierServer) -> Iterator[SupplierServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _handler(server: SupplierServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: with Nagle on, the body waits ~40 ms for the
        # client's delayed ACK of the headers
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path != "/parts" or "car_type" not in query:
                self._send(404, b'{"error": "not found"}')
                return
            car_type = query["car_type"][0]
            try:
                page = int(query.get("page", ["1"])[0])
            except ValueError:
                self._send(400, b'{"error": "page must be an integer"}')
                return
            reply = server.next_reply(car_type, page)
            time.sleep(server.latency + reply.delay)
            if reply.status != 200:
                headers = {"Retry-After": reply.retry_after, "Location": reply.location}
                self._send(reply.status, b'{"error": "scripted failure"}', headers)
                return
            self._send(200, server.page_body(car_type, page), trickle=reply.trickle)

        def _send(
            self,
            status: int,
            body: bytes,
            headers: dict[str, str | None] | None = None,
            trickle: float = 0.0,
        ) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    if value is not None:
                        self.send_header(name, value)
                self.end_headers()
                if not trickle:
                    self.wfile.write(body)
                    return
                for byte in body:
                    time.sleep(trickle)
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            except OSError:  # the client gave up (e.g. its timeout): nothing to answer
                pass

        def log_message(self, format: str, *args: Any) -> None:  # quiet: callers report
            pass

    return Handler


PART_NAMES = ("브레이크 패드", "오일 필터", "에어 필터", "와이퍼 블레이드", "점화 플러그",
              "타이밍 벨트", "배터리", "전조등 전구", "라디에이터 캡", "연료 펌프")  # fmt: skip
PRICE_FORMATS = ("{:,}원", "₩ {:,}", "{}", "KRW {:,}", "{:,} 원")


def synthetic_catalog(
    car_types: list[str], pages: int, items_per_page: int, parts: int = len(PART_NAMES)
) -> Catalog:
    """Pages of offers with varied price formats; part names repeat across pages and sellers so
    each (part, car type) collects several offers. Deterministic."""
    catalog: Catalog = {}
    for car_index, car_type in enumerate(car_types):
        car_pages = []
        for page in range(1, pages + 1):
            items = []
            for slot in range(items_per_page):
                n = (page - 1) * items_per_page + slot
                part = PART_NAMES[n % len(PART_NAMES)] + (f" {n % parts}" if parts > 10 else "")
                price = 5_000 + 100 * ((n * 37 + car_index * 11) % 997)
                items.append({
                    "name": part,
                    "car_type": car_type,
                    "price": PRICE_FORMATS[n % len(PRICE_FORMATS)].format(price),
                    "seller": f"seller-{n % 13}",
                    "url": f"https://shop.example/{car_index}/{n}",
                })  # fmt: skip
            car_pages.append(items)
        catalog[car_type] = car_pages
    return catalog
