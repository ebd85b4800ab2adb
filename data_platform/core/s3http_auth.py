"""Credentials, region and endpoint for `core.s3http`, resolved as boto3 would resolve them.

The common cheap case, keys in the environment and no --profile, MFA or role, is read here
without importing botocore. Everything else (profiles, our MFA and AssumeRole cache, SSO,
instance roles) goes through `core.aws` and botocore as in the rest of the platform; the lean
client then only signs with the (refreshing) credentials botocore found.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from data_platform.core.aws import AwsAuthError, AwsSettings
from data_platform.core.s3http import Endpoint, S3HttpClient
from data_platform.core.sigv4 import Credentials

_NO_CREDENTIALS = (
    "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a "
    "configured --profile, or run `data-platform aws login`."
)


def s3http_client(settings: AwsSettings, prompt: Callable[[str], str] | None) -> S3HttpClient:
    """A lean S3 client for `settings` (the same options as every other AWS command)."""
    static = environment_credentials(settings)
    if static is not None:
        profile = _ProfileConfig(os.environ.get("AWS_PROFILE"))
        region = settings.region or _env_region() or profile.get("region") or "us-east-1"
        endpoint = settings.endpoint_url or _configured_endpoint(profile)
        return _client(endpoint or f"https://s3.{region}.amazonaws.com", region, lambda: static)

    from data_platform.core.aws import make_client, open_session

    session = open_session(settings, prompt=prompt)
    found = session.get_credentials()
    if found is None:
        raise AwsAuthError(_NO_CREDENTIALS)
    boto_client = make_client(session, "s3", settings)
    return _client(
        boto_client.meta.endpoint_url, boto_client.meta.region_name, found.get_frozen_credentials
    )


def environment_credentials(settings: AwsSettings) -> Credentials | None:
    """Keys from the environment when botocore would use them too: no explicit profile, no
    MFA and no role (those need the session machinery)."""
    if settings.profile or settings.mfa_serial or settings.role_arn:
        return None
    if settings.mfa_token_code or settings.prompt_mfa:
        return None  # open_session explains the missing --mfa-serial
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    token = os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN")
    return Credentials(key, secret, token or None)


def _client(endpoint_url: str, region: str, credentials: Callable[[], Credentials]) -> S3HttpClient:
    host = urlsplit(endpoint_url).hostname or ""
    # S3-compatible servers (moto, MinIO) rarely resolve bucket subdomains; AWS prefers them.
    path_style = not host.endswith(".amazonaws.com")
    endpoint = Endpoint.parse(endpoint_url, path_style=path_style)
    return S3HttpClient(endpoint, region, credentials, ca_bundle=os.environ.get("AWS_CA_BUNDLE"))


def _env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def _configured_endpoint(profile: _ProfileConfig) -> str | None:
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return (
        os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or profile.get("endpoint_url")
    )


class _ProfileConfig:
    """The [default] or [profile NAME] section of the AWS config file, read on first use (most
    runs name region and endpoint on the command line or in the environment)."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self._values: dict[str, str] | None = None

    def get(self, option: str) -> str | None:
        if self._values is None:
            self._values = self._read()
        return self._values.get(option)

    def _read(self) -> dict[str, str]:
        import configparser

        path = Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            return {}
        section = "default" if self.name in (None, "default") else f"profile {self.name}"
        return dict(parser[section]) if parser.has_section(section) else {}
