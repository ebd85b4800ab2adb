"""AWS sessions against the moto server: SeaweedFS has no STS, so these tests store their probe
object in moto too (moto serves STS on the S3 URL)."""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.core import aws
from data_platform.core.aws import (
    AwsAuthError,
    AwsSettings,
    S3Connection,
    botocore_provider,
    login,
    make_client,
    open_session,
    s3_connection,
)
from data_platform.core.aws_cli import aws as aws_group

SERIAL = "arn:aws:iam::123456789012:mfa/analyst"
ROLE = "arn:aws:iam::123456789012:role/production"
CODE = "409173"  # not a substring of the account id
# What moto returns for GetSessionToken; must never be printed or logged.
MOTO_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
MOTO_TOKEN_START = "AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFF"


@pytest.fixture
def settings(aws_env: dict[str, str], moto_endpoint: str) -> AwsSettings:
    return AwsSettings(region="us-east-1", endpoint_url=moto_endpoint, mfa_serial=SERIAL)


@pytest.fixture
def bucket(moto_bucket: str) -> str:
    return moto_bucket  # where the STS credentials are accepted


def move_clock(monkeypatch: pytest.MonkeyPatch, ahead: timedelta) -> None:
    """Move the clock used by the cache checks and botocore's refresh window."""
    real_now = aws._now
    monkeypatch.setattr(aws, "_now", lambda: real_now() + ahead)


def cache_files(settings_env: dict[str, str]) -> list[Path]:
    return sorted(Path(settings_env["DATA_PLATFORM_AWS_CACHE_DIR"]).glob("*"))


def put_and_read(session, settings: AwsSettings, bucket: str) -> bytes:
    s3 = make_client(session, "s3", settings)
    s3.put_object(Bucket=bucket, Key="probe.txt", Body=b"ok")
    return s3.get_object(Bucket=bucket, Key="probe.txt")["Body"].read()


def test_code_that_is_not_six_digits_fails_before_calling_sts(aws_env: dict[str, str]) -> None:
    # Port 9 (discard) has no STS: reaching it would give a connection error instead.
    settings = AwsSettings(
        endpoint_url="http://127.0.0.1:9", mfa_serial=SERIAL, mfa_token_code="12a45"
    )
    with pytest.raises(AwsAuthError, match="exactly 6 digits") as caught:
        open_session(settings)
    assert "12a45" not in str(caught.value)
    assert SERIAL in str(caught.value)


def test_missing_code_with_nothing_cached_says_to_login(settings: AwsSettings) -> None:
    with pytest.raises(AwsAuthError) as caught:
        open_session(settings)
    assert "is not cached" in str(caught.value)
    assert f"data-platform aws login --mfa-serial {SERIAL}" in str(caught.value)


def test_settings_repr_hides_the_code() -> None:
    settings = AwsSettings(mfa_serial=SERIAL, mfa_token_code=CODE)
    assert CODE not in repr(settings)
    assert SERIAL in repr(settings)


class _AccessDeniedSts(BaseHTTPRequestHandler):
    """Answers every call like AWS STS answers a wrong MFA code."""

    body = (
        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        b"<Type>Sender</Type><Code>AccessDenied</Code><Message>MultiFactorAuthentication "
        b"failed with invalid MFA one time pass code. </Message></Error>"
        b"<RequestId>4c0a9c2e</RequestId></ErrorResponse>"
    )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def rejecting_sts() -> Iterator[str]:
    # moto accepts any MFA code, so a wrong code is only reproducible with a stub over HTTP.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AccessDeniedSts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_rejected_code_names_the_device_not_the_code(
    aws_env: dict[str, str], rejecting_sts: str
) -> None:
    settings = AwsSettings(sts_endpoint_url=rejecting_sts, mfa_serial=SERIAL, mfa_token_code=CODE)
    with pytest.raises(AwsAuthError, match="rejected the MFA code") as caught:
        login(settings)
    message = str(caught.value)
    assert SERIAL in message
    assert CODE not in message
    assert "data-platform aws login" in message
    assert caught.value.__cause__ is None
    assert cache_files(aws_env) == []


def test_login_caches_privately_and_later_sessions_need_no_code(
    settings: AwsSettings, aws_env: dict[str, str], bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="data_platform")
    expiry = login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE}))
    assert timedelta(minutes=59) < expiry - aws._now() <= timedelta(hours=1)

    [cached] = cache_files(aws_env)  # no temporary file left behind
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700

    session = open_session(settings)  # no code, no prompt: the cache is enough
    frozen = session.get_credentials().get_frozen_credentials()
    assert frozen.secret_key == MOTO_SECRET
    assert put_and_read(session, settings, bucket) == b"ok"
    # botocore's own DEBUG output signs with the token; our log lines must not carry secrets.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("data_platform"))
    assert "New MFA session" in ours
    for secret in (MOTO_SECRET, MOTO_TOKEN_START, CODE):
        assert secret not in ours


def test_expired_cache_without_code_says_to_login(
    settings: AwsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE}))
    move_clock(monkeypatch, timedelta(hours=2))
    with pytest.raises(AwsAuthError, match="has expired") as caught:
        open_session(settings)
    assert "data-platform aws login" in str(caught.value)


def test_prompt_is_used_when_allowed(settings: AwsSettings) -> None:
    asked: list[str] = []

    def prompt(label: str) -> str:
        asked.append(label)
        return CODE

    session = open_session(AwsSettings(**{**vars(settings), "prompt_mfa": True}), prompt)
    assert session.get_credentials().get_frozen_credentials().secret_key == MOTO_SECRET
    assert asked == [f"MFA code for {SERIAL}: "]


def test_running_session_picks_up_a_renewed_login_then_fails_clearly_once_expired(
    settings: AwsSettings, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE}))
    session = open_session(settings)
    credentials = session.get_credentials()

    # 55 minutes into a long run: 5 minutes left, inside botocore's mandatory refresh window.
    move_clock(monkeypatch, timedelta(minutes=55))
    assert credentials.refresh_needed()
    # Meanwhile someone runs `data-platform aws login` again with a longer session.
    login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE, "mfa_duration_seconds": 7200}))
    assert put_and_read(session, settings, bucket) == b"ok"
    assert not credentials.refresh_needed()

    # Past the renewed session's end, with no code available: a clear error, not ExpiredToken.
    move_clock(monkeypatch, timedelta(hours=2))
    with pytest.raises(AwsAuthError, match="data-platform aws login"):
        put_and_read(session, settings, bucket)


def test_object_store_signs_with_the_renewed_session(
    settings: AwsSettings, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """obstore gets botocore's refreshing credentials through its provider hook: asking it late
    in a run renews the session (obstore asking again is test_objectstore's)."""
    from data_platform.core.objectstore_s3 import S3ObjectStore

    login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE}))
    session = open_session(settings)
    credentials = session.get_credentials()
    connection = S3Connection("us-east-1", botocore_provider(credentials), settings.endpoint_url)
    store = S3ObjectStore(connection, bucket)
    store.put("probe.txt", b"before")
    assert connection.credentials()["expires_at"] is not None  # obstore must ask again

    move_clock(monkeypatch, timedelta(minutes=55))
    login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE, "mfa_duration_seconds": 7200}))
    assert credentials.refresh_needed()
    connection.credentials()
    assert not credentials.refresh_needed()  # the provider renewed the session
    store.put("probe.txt", b"after")
    assert store.get("probe.txt") == b"after"


def test_s3_connection_from_environment_keys_needs_no_boto3(aws_env: dict[str, str]) -> None:
    connection = s3_connection(AwsSettings(endpoint_url="http://127.0.0.1:9"))
    assert (connection.region, connection.endpoint_url) == ("us-east-1", "http://127.0.0.1:9")
    assert connection.credentials()["access_key_id"] == aws_env["AWS_ACCESS_KEY_ID"]
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in repr(connection)


def test_assume_role_without_mfa(aws_env: dict[str, str], moto_endpoint: str, bucket: str) -> None:
    settings = AwsSettings(region="us-east-1", endpoint_url=moto_endpoint, role_arn=ROLE)
    session = open_session(settings)
    identity = make_client(session, "sts", settings).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::123456789012:assumed-role/production/data-platform"
    assert put_and_read(session, settings, bucket) == b"ok"


def test_role_is_reassumed_with_the_mfa_session_before_it_expires(
    settings: AwsSettings, aws_env: dict[str, str], bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    role_settings = AwsSettings(**{**vars(settings), "role_arn": ROLE})
    login(AwsSettings(**{**vars(settings), "mfa_token_code": CODE, "mfa_duration_seconds": 7200}))
    session = open_session(role_settings)
    first_key = session.get_credentials().get_frozen_credentials().access_key
    assert len(cache_files(aws_env)) == 2  # MFA session + role credentials

    # 58 minutes in: the 1-hour role credentials must renew; the 2-hour MFA session is still valid.
    move_clock(monkeypatch, timedelta(minutes=58))
    assert put_and_read(session, role_settings, bucket) == b"ok"
    renewed_key = session.get_credentials().get_frozen_credentials().access_key
    assert renewed_key != first_key


def test_login_command_prints_expiry_and_no_secret(
    settings: AwsSettings, moto_endpoint: str
) -> None:
    args = ["login", "--endpoint-url", moto_endpoint, "--mfa-serial", SERIAL]
    result = CliRunner().invoke(aws_group, [*args, "--mfa-token-code", CODE])
    assert result.exit_code == 0, result.output
    assert "expires at" in result.output
    assert SERIAL in result.output
    for secret in (MOTO_SECRET, MOTO_TOKEN_START, CODE):
        assert secret not in result.output

    prompted = CliRunner().invoke(aws_group, [*args, "--prompt-mfa"], input=f"{CODE}\n")
    assert prompted.exit_code == 0, prompted.output
    assert CODE not in prompted.output  # hidden input


def test_login_command_with_bad_code_exits_with_message(settings: AwsSettings) -> None:
    result = CliRunner().invoke(
        aws_group, ["login", "--mfa-serial", SERIAL, "--mfa-token-code", "1"]
    )
    assert result.exit_code == 1
    assert "exactly 6 digits" in result.output
    assert "Traceback" not in result.output
