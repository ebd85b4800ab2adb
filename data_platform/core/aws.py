"""AWS sessions: profile/region, MFA (STS GetSessionToken), AssumeRole, refreshable credentials.

Temporary credentials are cached on disk (0600 files in a 0700 directory) so that one
`data-platform aws login --prompt-mfa` lets later CLI calls and Dagster runs work without a code.
boto3 is imported inside functions: importing this module must stay cheap for the CLI.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from data_platform.core.aws_cache import (
    CredentialCache,
    TemporaryCredentials,
    cache_dir_for,
    credentials_from_sts,
)

if TYPE_CHECKING:
    import boto3

logger = logging.getLogger(__name__)

# Cached credentials with less than this left are used only when nothing better is available.
RENEW_AHEAD = timedelta(minutes=15)
# Credentials closer than this to expiry are treated as expired (a request may be in flight).
EXPIRY_MARGIN = timedelta(seconds=60)
_MFA_CODE = re.compile(r"\d{6}")
_MIN_DURATION, _MAX_DURATION = 900, 129_600  # GetSessionToken limits for IAM users


class AwsAuthError(Exception):
    """Authentication failed; the message says what to do (and never holds a secret)."""


@dataclass(frozen=True)
class AwsSettings:
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    mfa_serial: str | None = None
    mfa_token_code: str | None = field(default=None, repr=False)
    prompt_mfa: bool = False
    mfa_duration_seconds: int = 3600
    role_arn: str | None = None
    role_session_name: str = "data-platform"
    cache_dir: str | None = None
    # STS endpoint; None reuses endpoint_url (moto serves S3 and STS on one URL).
    sts_endpoint_url: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def open_session(
    settings: AwsSettings, prompt: Callable[[str], str] | None = None
) -> boto3.Session:
    """A boto3 session for `settings`; temporary credentials renew themselves before expiry."""
    _validate(settings)
    if settings.mfa_serial is None and settings.role_arn is None:
        return _base_session(settings)
    source = _CredentialSource(settings, prompt)
    return source.refreshable_session()


def login(settings: AwsSettings, prompt: Callable[[str], str] | None = None) -> datetime:
    """Request a new MFA session (ignoring the cache), cache it and return its expiry."""
    _validate(settings)
    if settings.mfa_serial is None:
        raise AwsAuthError("aws login needs --mfa-serial (the ARN of your MFA device).")
    source = _CredentialSource(settings, prompt)
    code = settings.mfa_token_code or source.ask_code()
    if code is None:
        raise AwsAuthError(
            f"No MFA code for {settings.mfa_serial}: pass --mfa-token-code or --prompt-mfa."
        )
    return source.new_mfa_session(code).expiration


def make_client(
    session: boto3.Session, service: str, settings: AwsSettings, max_pool_connections: int = 32
) -> Any:
    """A client with the configured endpoint, region, standard retries and connection pool."""
    from botocore.config import Config

    endpoint = _sts_endpoint(settings) if service == "sts" else settings.endpoint_url
    config = Config(
        retries={"max_attempts": 10, "mode": "standard"},
        max_pool_connections=max_pool_connections,
        # S3-compatible servers (moto, MinIO) rarely resolve bucket subdomains.
        s3={"addressing_style": "path"} if endpoint and service == "s3" else None,
    )
    return session.client(
        service,
        region_name=settings.region or session.region_name,
        endpoint_url=endpoint,
        config=config,
    )


def login_command_hint(settings: AwsSettings) -> str:
    parts = ["data-platform aws login"]
    if settings.profile:
        parts.append(f"--profile {settings.profile}")
    parts.append(f"--mfa-serial {settings.mfa_serial or '<mfa-device-arn>'}")
    if settings.endpoint_url:
        parts.append(f"--endpoint-url {settings.endpoint_url}")
    parts.append("--prompt-mfa")
    return " ".join(parts)


def _validate(settings: AwsSettings) -> None:
    if settings.mfa_serial is None and (settings.mfa_token_code or settings.prompt_mfa):
        raise AwsAuthError("An MFA code was given without --mfa-serial: add --mfa-serial ARN.")
    if settings.mfa_token_code is not None:
        _check_code_format(settings.mfa_token_code, settings.mfa_serial)
    if not _MIN_DURATION <= settings.mfa_duration_seconds <= _MAX_DURATION:
        raise AwsAuthError(
            f"mfa_duration_seconds must be between {_MIN_DURATION} and {_MAX_DURATION}, "
            f"got {settings.mfa_duration_seconds}."
        )


def _check_code_format(code: str, mfa_serial: str | None) -> str:
    code = code.strip()
    if not _MFA_CODE.fullmatch(code):
        raise AwsAuthError(
            f"The MFA code for {mfa_serial} must be exactly 6 digits (the value given is not); "
            "enter the current code shown on the device."
        )
    return code


def _base_session(settings: AwsSettings) -> boto3.Session:
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=settings.profile, region_name=settings.region)
    except ProfileNotFound:
        raise AwsAuthError(
            f"AWS profile {settings.profile!r} is not configured: run "
            f"`aws configure --profile {settings.profile}` or pick another --profile."
        ) from None


def _sts_endpoint(settings: AwsSettings) -> str | None:
    return settings.sts_endpoint_url or settings.endpoint_url


class _CredentialSource:
    """Finds temporary credentials: disk cache, then MFA code / prompt, then AssumeRole."""

    def __init__(self, settings: AwsSettings, prompt: Callable[[str], str] | None) -> None:
        self.settings = settings
        self.prompt = prompt
        self.base = _base_session(settings)
        self.region = settings.region or self.base.region_name or "us-east-1"
        self.cache = CredentialCache(cache_dir_for(settings.cache_dir))
        identity = [self.base.profile_name, settings.mfa_serial, _sts_endpoint(settings)]
        self.mfa_key = self.cache.key("mfa", identity)
        self.role_key = self.cache.key("role", [*identity, settings.role_arn])

    def refreshable_session(self) -> boto3.Session:
        import boto3
        import botocore.session
        from botocore.credentials import RefreshableCredentials

        first = self.current(first_call=True)
        credentials = RefreshableCredentials(
            access_key=first.access_key_id,
            secret_key=first.secret_access_key,
            token=first.session_token,
            expiry_time=first.expiration,
            refresh_using=lambda: self.current(first_call=False).as_refresh_metadata(),
            method="data-platform",
            time_fetcher=lambda: _now(),  # late-bound so tests can move the clock
        )
        core = botocore.session.Session(profile=self.settings.profile)
        core._credentials = credentials
        core.set_config_variable("region", self.region)
        return boto3.Session(botocore_session=core)

    def current(self, first_call: bool) -> TemporaryCredentials:
        if self.settings.role_arn is None:
            return self.mfa_session(first_call)
        return self.role_session(first_call)

    def role_session(self, first_call: bool) -> TemporaryCredentials:
        if self.settings.mfa_serial is None:
            return self._assume_role(None)
        cached = self.cache.read(self.role_key)
        if cached is not None and cached.time_left(_now()) >= RENEW_AHEAD:
            return cached
        role = self._assume_role(self.mfa_session(first_call))
        self.cache.write(self.role_key, role, self._describe())
        return role

    def mfa_session(self, first_call: bool) -> TemporaryCredentials:
        cached = self.cache.read(self.mfa_key)
        # On refresh, anything still valid will do: another `login` may have renewed the cache.
        wanted = RENEW_AHEAD if first_call else EXPIRY_MARGIN
        if cached is not None and cached.time_left(_now()) >= wanted:
            logger.debug("Using cached MFA session for %s", self.settings.mfa_serial)
            return cached
        # A given code is single-use: only the first call may spend it.
        code = self.settings.mfa_token_code if first_call else None
        code = code or self.ask_code()
        if code is not None:
            return self.new_mfa_session(code)
        if cached is not None and cached.time_left(_now()) >= EXPIRY_MARGIN:
            logger.warning(
                "MFA session for %s expires at %s; renew it with `%s`.",
                self.settings.mfa_serial,
                cached.expiration.isoformat(timespec="seconds"),
                login_command_hint(self.settings),
            )
            return cached
        state = "has expired" if cached is not None else "is not cached"
        raise AwsAuthError(
            f"The MFA session for {self.settings.mfa_serial} {state} and no MFA code is "
            f"available: run `{login_command_hint(self.settings)}`, then retry."
        )

    def ask_code(self) -> str | None:
        if not self.settings.prompt_mfa:
            return None
        ask = self.prompt or getpass.getpass
        return ask(f"MFA code for {self.settings.mfa_serial}: ")

    def new_mfa_session(self, code: str) -> TemporaryCredentials:
        code = _check_code_format(code, self.settings.mfa_serial)
        sts = self.base.client(
            "sts", region_name=self.region, endpoint_url=_sts_endpoint(self.settings)
        )
        response = self._call_sts(
            "GetSessionToken",
            lambda: sts.get_session_token(
                SerialNumber=self.settings.mfa_serial,
                TokenCode=code,
                DurationSeconds=self.settings.mfa_duration_seconds,
            ),
            code,
        )
        session = credentials_from_sts(response["Credentials"])
        self.cache.write(self.mfa_key, session, self._describe())
        logger.info(
            "New MFA session for %s, expires at %s",
            self.settings.mfa_serial,
            session.expiration.isoformat(timespec="seconds"),
        )
        return session

    def _assume_role(self, via: TemporaryCredentials | None) -> TemporaryCredentials:
        keys: dict[str, str] = {}
        if via is not None:
            keys = {
                "aws_access_key_id": via.access_key_id,
                "aws_secret_access_key": via.secret_access_key,
                "aws_session_token": via.session_token,
            }
        sts = self.base.client(
            "sts", region_name=self.region, endpoint_url=_sts_endpoint(self.settings), **keys
        )
        response = self._call_sts(
            "AssumeRole",
            lambda: sts.assume_role(
                RoleArn=self.settings.role_arn, RoleSessionName=self.settings.role_session_name
            ),
            None,
        )
        role = credentials_from_sts(response["Credentials"])
        logger.info(
            "Assumed role %s, expires at %s",
            self.settings.role_arn,
            role.expiration.isoformat(timespec="seconds"),
        )
        return role

    def _call_sts(self, operation: str, call: Callable[[], Any], code: str | None) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        profile = self.base.profile_name
        try:
            return call()
        except NoCredentialsError:
            raise AwsAuthError(
                f"No AWS credentials for profile {profile!r}: run `aws configure --profile "
                f"{profile}` with your long-term access key, then retry."
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            error_code = error.get("Code", "Unknown")
            message = str(error.get("Message", ""))
            if code:
                message = message.replace(code, "******")
            if operation == "GetSessionToken" and error_code == "AccessDenied":
                raise AwsAuthError(
                    f"STS rejected the MFA code for {self.settings.mfa_serial} (AccessDenied). "
                    "Wait for the next code on that device (each code works once) and check the "
                    f"device belongs to profile {profile!r}, then run "
                    f"`{login_command_hint(self.settings)}`."
                ) from None
            target = f" for {self.settings.role_arn}" if operation == "AssumeRole" else ""
            raise AwsAuthError(
                f"STS {operation}{target} failed with {error_code}: {message} "
                f"Check profile {profile!r} and its permissions."
            ) from None
        except BotoCoreError as exc:
            raise AwsAuthError(
                f"STS {operation} could not be called ({type(exc).__name__}: {exc}); check "
                "--endpoint-url / network access to STS."
            ) from None

    def _describe(self) -> dict[str, str | None]:
        return {
            "profile": self.base.profile_name,
            "mfa_serial": self.settings.mfa_serial,
            "role_arn": self.settings.role_arn,
            "sts_endpoint_url": _sts_endpoint(self.settings),
        }


@dataclass(frozen=True)
class S3Connection:
    """Where an S3 store lives and how to sign for it, for obstore: `credentials` is called for
    each new signing key (obstore's credential-provider hook) and returns obstore's S3Credential
    dict, so refreshing credentials (MFA, AssumeRole) stay current through a long run."""

    region: str
    credentials: Callable[[], dict[str, Any]] = field(repr=False)
    endpoint_url: str | None = None  # None: AWS itself
    max_retries: int | None = None  # None: obstore's default (retries with backoff)

    @classmethod
    def from_boto3_client(cls, client: Any) -> S3Connection:
        """The endpoint, region and credentials a boto3 S3 client signs with."""
        # botocore keeps the (possibly refreshing) credentials on the request signer only.
        credentials = client._request_signer._credentials
        if credentials is None:
            raise AwsAuthError(_NO_CREDENTIALS)
        endpoint = client.meta.endpoint_url
        aws_endpoint = (urlsplit(endpoint).hostname or "").endswith(".amazonaws.com")
        return cls(
            region=client.meta.region_name or "us-east-1",
            credentials=botocore_provider(credentials),
            endpoint_url=None if aws_endpoint else endpoint,
        )

    def obstore(self, bucket: str, checksum: str | None = None) -> Any:
        """An obstore S3Store on `bucket` (path-style on a custom endpoint); `checksum`
        ("sha256") sends each PUT body's checksum for the server to check."""
        from obstore.store import S3Store

        options: dict[str, Any] = {}
        if checksum is not None:
            options["checksum_algorithm"] = checksum
        if self.max_retries is not None:
            options["retry_config"] = {"max_retries": self.max_retries}
        if self.endpoint_url is not None:
            options["endpoint"] = self.endpoint_url
            options["virtual_hosted_style_request"] = False
            if self.endpoint_url.startswith("http://"):
                options["client_options"] = {"allow_http": True}
        return S3Store(bucket, region=self.region, credential_provider=self.credentials, **options)


# How long obstore may reuse refreshing credentials before asking again. botocore hands out none
# with less than 15 minutes left (it renews them first), and obstore asks again once what it holds
# has under 5 minutes left: so at most ~10 minutes of reuse, never past the real expiry.
CREDENTIAL_RECHECK = timedelta(minutes=15)
_NO_CREDENTIALS = (
    "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a "
    "configured --profile, or run `data-platform aws login`."
)


def static_provider(
    access_key_id: str, secret_access_key: str, token: str | None = None
) -> Callable[[], dict[str, Any]]:
    credential = {
        "access_key_id": access_key_id,
        "secret_access_key": secret_access_key,
        "token": token,
        "expires_at": None,
    }
    return lambda: credential


def botocore_provider(credentials: Any) -> Callable[[], dict[str, Any]]:
    """obstore credentials from botocore's (refreshing ones are asked again every few minutes)."""
    refreshing = hasattr(credentials, "refresh_needed")

    def provide() -> dict[str, Any]:
        frozen = credentials.get_frozen_credentials()
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            # obstore's clock is the real one (tests move `_now`)
            "expires_at": datetime.now(UTC) + CREDENTIAL_RECHECK if refreshing else None,
        }

    return provide


def s3_connection(
    settings: AwsSettings, prompt: Callable[[str], str] | None = None
) -> S3Connection:
    """The S3 connection for `settings`, resolved as boto3 would. Keys in the environment with no
    --profile, MFA or role are read here without importing boto3; everything else (profiles, our
    MFA and AssumeRole cache, SSO, instance roles) goes through botocore's credential chain."""
    static = _environment_keys(settings)
    if static is not None:
        profile = _ProfileConfig(os.environ.get("AWS_PROFILE"))
        region = settings.region or _env_region() or profile.get("region") or "us-east-1"
        endpoint = settings.endpoint_url or _configured_endpoint(profile)
        return S3Connection(region, static, endpoint)
    session = open_session(settings, prompt=prompt)
    found = session.get_credentials()
    if found is None:
        raise AwsAuthError(_NO_CREDENTIALS)
    return S3Connection.from_boto3_client(make_client(session, "s3", settings))


def _environment_keys(settings: AwsSettings) -> Callable[[], dict[str, Any]] | None:
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
    return static_provider(key, secret, token or None)


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
