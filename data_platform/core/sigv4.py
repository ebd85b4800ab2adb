"""AWS Signature Version 4 for S3 requests, with hmac/hashlib only (no botocore import).

Bodies are sent as UNSIGNED-PAYLOAD (S3 accepts it on HTTP and HTTPS); callers protect bodies
with Content-MD5 instead, so no request pays for a SHA-256 of its payload. Checked against
botocore's S3SigV4Auth in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Credentials:
    """Attribute names as botocore's ReadOnlyCredentials, so either can be passed."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)


def quote_path(path: str) -> str:
    """A key or bucket path as S3 wants it on the request line and in the canonical request."""
    return quote(path, safe="/~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(params.items())
    )


class SigV4Signer:
    """Adds x-amz-date, x-amz-content-sha256, the session token and Authorization to headers."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        query: str,
        headers: dict[str, str],
        credentials: Credentials,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """`path` and `query` already quoted (`quote_path`, `canonical_query`); returns the
        headers to send (the given ones plus the signature's)."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        signed = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
        signed["host"] = host
        signed["x-amz-date"] = stamp
        signed.setdefault("x-amz-content-sha256", UNSIGNED_PAYLOAD)
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        names = sorted(signed)
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                signed["x-amz-content-sha256"],
            ]
        )
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self._signing_key(credentials.secret_key, stamp[:8])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed

    def _signing_key(self, secret: str, day: str) -> bytes:
        # Four HMACs per day and secret instead of per request.
        with self._lock:
            key = self._keys.get((secret, day))
            if key is None:
                key = f"AWS4{secret}".encode()
                for part in (day, self.region, self.service, "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._keys = {(secret, day): key}
        return key
