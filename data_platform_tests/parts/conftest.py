"""Parts fixtures: a real local supplier, a real local Slack webhook, fast retry settings."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from data_platform.parts.config import SupplierConfig
from data_platform.parts.supplier_server import Catalog, SupplierServer

# parts_prices as parts creates it, with the part name's type and a CHECK on max_price to fill in
PRICES_TABLE = """CREATE TABLE parts_prices (
    part_official_name {name_type} NOT NULL, car_type text NOT NULL,
    min_price bigint NOT NULL, max_price bigint NOT NULL {check}, avg_price bigint NOT NULL,
    offer_count integer NOT NULL, extracted_at date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (part_official_name, car_type, extracted_at))"""


class Webhook:
    """Records the JSON bodies POSTed to it; answers {"ok":true} like Slack's Web API (the webhook
    notifier only checks the status, the bot client reads the JSON)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"

    @property
    def texts(self) -> list[str]:
        return [m["text"] for m in self.messages]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def supplier() -> Iterator[Callable[[Catalog], SupplierServer]]:
    started: list[SupplierServer] = []

    def start(catalog: Catalog, latency: float = 0.0) -> SupplierServer:
        server = SupplierServer(catalog, latency)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def fast_config(server: SupplierServer, **overrides: Any) -> SupplierConfig:
    """Small timeouts and backoffs so retries take milliseconds (Retry-After still honoured)."""
    config = SupplierConfig(
        code="test",
        base_url=server.base_url,
        car_types=tuple(server.catalog),
        max_pages=5,
        concurrency=4,
        requests_per_second=200,
        timeout_seconds=0.5,
        max_retry_rounds=2,
        max_attempts=3,
        backoff_seconds=0.02,
        max_backoff_seconds=2.0,
        round_delay_seconds=0.0,
    )
    return config.model_copy(update=overrides)
