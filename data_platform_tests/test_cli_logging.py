"""`-v` turns on our loggers only: no MFA code, secret key or session token reaches stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from data_platform_tests.core.test_aws import CODE, MOTO_SECRET, MOTO_TOKEN_START, SERIAL


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "data_platform.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_verbose_login_and_sync_print_no_secret(
    aws_env: dict[str, str], moto_endpoint: str, moto_bucket: str, tmp_path: Path
) -> None:
    s3_endpoint, bucket = moto_endpoint, moto_bucket  # STS: only moto has it
    login = _cli(
        "-v", "aws", "login", "--endpoint-url", s3_endpoint,
        "--mfa-serial", SERIAL, "--mfa-token-code", CODE,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    sync = _cli(
        "-v", "s3", "upload", "--endpoint-url", s3_endpoint, "--mfa-serial", SERIAL,
        "--bucket", bucket, "--local-dir", str(tmp_path / "src"),
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    assert "DEBUG data_platform." in sync.stderr  # -v does show our own debug messages
    for output in (login.stderr, sync.stderr):
        for secret in (CODE, MOTO_SECRET, MOTO_TOKEN_START, "X-Amz-Security-Token"):
            assert secret not in output
        assert "botocore" not in output


def test_botocore_debug_log_only_by_name_and_with_a_warning(
    aws_env: dict[str, str], s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    # A named profile makes `s3 upload` resolve credentials through botocore (keys in the
    # environment alone take the lean client's path, which never imports it).
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    done = _cli(
        "--debug-logger", "botocore", "s3", "upload", "--endpoint-url", s3_endpoint,
        "--bucket", bucket, "--local-dir", str(tmp_path / "src"), "--profile", "default",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: the botocore debug log prints request headers" in done.stderr
    assert "DEBUG botocore." in done.stderr
