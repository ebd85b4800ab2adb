"""AWS sessions: profile/region, MFA (STS GetSessionToken), AssumeRole, refreshable credentials.

Temporary credentials are cached on disk (0600 files in a 0700 directory) so that one
`data-platform aws login --prompt-mfa` lets later CLI calls and Dagster runs work without a code.
boto3 is imported inside functions: importing this module must stay cheap for the CLI.
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

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
