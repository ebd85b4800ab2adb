"""A real HTTP proxy in front of the test S3 server that misbehaves on purpose.

It forwards every request unchanged (Host header included, so signatures still hold), counts the
S3 operations it sees, and can cut a GET body after half of it, flip a byte of GET bodies, hold
GET bodies (after half) and UploadPart requests until the test lets them go, run a hook as the
first part arrives, drop a chosen request, or forward it and drop its reply (the server acted,
the client never hears), so the client meets real broken connections, not mocks.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


@dataclass
class Faults:
    cut_bodies: int = 0  # this many GET bodies end (connection closed) after half their bytes
    corrupt_bodies: bool = False  # flip the first byte of every GET body
    hold_bodies: threading.Event | None = None  # GET bodies stop after half until this is set
    hold_upload_parts: threading.Event | None = None  # UploadPart waits until this is set
    # Called with (method, path, request headers) after the server answered; True: close the
    # connection instead of replying, so the server has acted but the client never learns it.
    drop_reply: Callable[[str, str, Message], bool] | None = None
    # The same question before forwarding; True: close the connection, the server never sees it.
    drop_request: Callable[[str, str, Message], bool] | None = None
    parts_held: int = 0
    bodies_cut: int = 0
    replies_dropped: int = 0
    requests_dropped: int = 0
    on_first_upload_part: Callable[[], None] | None = None  # run as the first part arrives
    parts_seen: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # S3 operations the server received


class FaultyProxy:
    def __init__(self, upstream: str, faults: Faults) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.faults = faults
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _take_cut(self) -> bool:
        with self._lock:
            if self.faults.bodies_cut < self.faults.cut_bodies:
                self.faults.bodies_cut += 1
                return True
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _hang_up_if(
                self, fault: Callable[[str, str, Message], bool] | None, counter: str
            ) -> bool:
                """Close the connection without a reply when `fault` picks this request."""
                if not (fault and fault(self.command, self.path, self.headers)):
                    return False
                with proxy._lock:
                    setattr(proxy.faults, counter, getattr(proxy.faults, counter) + 1)
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return True

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self._hang_up_if(proxy.faults.drop_request, "requests_dropped"):
                    return
                gate = proxy.faults.hold_upload_parts
                is_part = "uploadId=" in self.path and "partNumber=" in self.path
                with proxy._lock:
                    proxy.faults.calls[operation(self.command, self.path)] += 1
                if is_part:
                    with proxy._lock:
                        proxy.faults.parts_seen += 1
                        first = proxy.faults.parts_seen == 1
                    if first and proxy.faults.on_first_upload_part is not None:
                        proxy.faults.on_first_upload_part()
                if gate and is_part:
                    with proxy._lock:
                        proxy.faults.parts_held += 1
                    gate.wait(timeout=300)
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if self._hang_up_if(proxy.faults.drop_reply, "replies_dropped"):
                    return
                is_object = self.command == "GET" and "list-type=" not in self.path
                is_body = is_object and response.status in (200, 206) and data
                self.send_response(response.status)
                skip = _HOP_HEADERS if self.command == "HEAD" else _HOP_HEADERS | {"content-length"}
                for name, value in response.getheaders():
                    if name.lower() not in skip:
                        self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not is_body:
                    self.wfile.write(data)
                    return
                if proxy.faults.corrupt_bodies:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                if proxy._take_cut():
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if proxy.faults.hold_bodies:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    proxy.faults.hold_bodies.wait(timeout=300)
                    data = data[len(data) // 2 :]
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        return Handler


def operation(method: str, target: str) -> str:
    """The S3 operation an HTTP request is (the ones a sync sends)."""
    path, _, query = target.partition("?")
    params = {part.split("=")[0] for part in query.split("&") if part}
    on_bucket = path.strip("/").count("/") == 0
    if method == "GET" and on_bucket:
        return "ListMultipartUploads" if "uploads" in params else "ListObjectsV2"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in params else "CompleteMultipartUpload"
    if method == "PUT":
        return "UploadPart" if "partNumber" in params else "PutObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
    return {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, method)
