"""A real HTTP proxy in front of the suite's S3 server: records what the server received (not
what the client meant to send) and can refuse chosen writes the way S3 does (403 AccessDenied)."""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlparse

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


class CountingProxy:
    """Forwards HTTP requests to `upstream` and records (method, path) of each; a PUT whose
    (unquoted) path contains `refuse_puts_containing` is answered 403 AccessDenied instead."""

    def __init__(self, upstream: str, refuse_puts_containing: str | None = None) -> None:
        self.upstream = urlparse(upstream)
        self.refuse_puts_containing = refuse_puts_containing
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = self.path
                with proxy._lock:
                    proxy.requests.append((self.command, path))
                marker = proxy.refuse_puts_containing
                if self.command == "PUT" and marker and marker in unquote(path):
                    self._refuse()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port)
                try:
                    conn.request(self.command, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_HEADERS | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _refuse(self) -> None:
                body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                self.send_response(403)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def calls(self, bucket: str) -> Counter[str]:
        """Requests on object keys of `bucket` counted as 'GET key', 'HEAD key', 'LIST', ..."""
        counted: Counter[str] = Counter()
        for method, path in self.requests:
            parsed = urlparse(path)
            key = parsed.path.removeprefix(f"/{bucket}").lstrip("/")
            if method == "GET" and not key and "list-type=2" in parsed.query:
                counted["LIST"] += 1
            else:
                counted[f"{method} {key}"] += 1
        return counted

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
