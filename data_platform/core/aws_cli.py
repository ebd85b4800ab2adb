"""Click pieces for AWS: shared options collapsed into one AwsSettings, and `aws login`.

Only click and data_platform.core.aws (stdlib-only at import) are imported at module level,
so `data-platform --help` does not pay for boto3. A command's object store talks S3 through
obstore; boto3 is imported only for profiles, MFA and roles (and bucket administration).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from data_platform.core.aws import AwsAuthError, AwsSettings, login

if TYPE_CHECKING:
    from data_platform.core.aws import S3Connection
    from data_platform.core.objectstore import ObjectStore

_OPTION_NAMES = (
    "profile",
    "region",
    "endpoint_url",
    "sts_endpoint_url",
    "mfa_serial",
    "mfa_token_code",
    "prompt_mfa",
    "mfa_duration_seconds",
    "role_arn",
    "role_session_name",
)

_OPTIONS = [
    click.option("--profile", default=None, help="AWS profile (default: AWS_PROFILE or default)."),
    click.option("--region", default=None, help="AWS region (default: from the profile)."),
    click.option("--endpoint-url", default=None, help="S3-compatible endpoint, e.g. moto/MinIO."),
    click.option(
        "--sts-endpoint-url", default=None, help="STS endpoint (default: --endpoint-url)."
    ),
    click.option("--mfa-serial", default=None, help="ARN of the MFA device; enables MFA."),
    click.option("--mfa-token-code", default=None, help="Current 6-digit MFA code."),
    click.option("--prompt-mfa", is_flag=True, help="Ask for the MFA code (hidden input)."),
    click.option(
        "--mfa-duration-seconds",
        type=click.IntRange(900, 129_600),
        default=3600,
        show_default=True,
        help="Lifetime of the MFA session.",
    ),
    click.option("--role-arn", default=None, help="Role to assume (e.g. production)."),
    click.option(
        "--role-session-name", default="data-platform", show_default=True, help="AssumeRole name."
    ),
]


def aws_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the AWS options to a click command; it receives them as one `aws_settings` kwarg.

    AwsAuthError raised by the command becomes a clean click error (the message says what to do).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _OPTION_NAMES}
        kwargs["aws_settings"] = AwsSettings(**values)
        try:
            return func(*args, **kwargs)
        except AwsAuthError as exc:
            raise click.ClickException(str(exc)) from None

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def prompt_for_code(label: str) -> str:
    return click.prompt(label, hide_input=True, prompt_suffix="" if label.endswith(" ") else ": ")


def prompt_for(settings: AwsSettings) -> Callable[[str], str] | None:
    """The prompt to pass to open_session/login: only when --prompt-mfa was given."""
    return prompt_for_code if settings.prompt_mfa else None


def cli_s3_client(settings: AwsSettings) -> Any:
    """A boto3 S3 client for a command (boto3 imported only now; MFA asked for if told to)."""
    from data_platform.core.aws import make_client, open_session

    return make_client(open_session(settings, prompt=prompt_for(settings)), "s3", settings)


def cli_s3_connection(settings: AwsSettings) -> S3Connection:
    """A command's S3 connection for obstore: keys in the environment need no boto3; profiles,
    MFA and roles go through botocore's chain (MFA asked for if told to)."""
    from data_platform.core.aws import s3_connection

    return s3_connection(settings, prompt=prompt_for(settings))


def cli_object_store(url: str, settings: AwsSettings, *, existing: bool = False) -> ObjectStore:
    """The store a command's URL option names; a malformed URL is a clean click error.

    `existing`: a local folder must already be there. A command that only reads would otherwise
    show a mistyped path as an empty store (S3 says the same of a missing bucket when first used).
    """
    from data_platform.core.objectstore import object_store_from_url
    from data_platform.core.objectstore_local import LocalObjectStore

    try:
        store = object_store_from_url(url, client_factory=lambda: cli_s3_connection(settings))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if existing and isinstance(store, LocalObjectStore) and not store.root.is_dir():
        raise click.ClickException(
            f"store {url} is not an existing folder; check the path (S3 stores are s3://bucket/prefix)"
        )
    return store


aws = click.Group("aws", help="AWS credentials: MFA sessions cached for later commands and runs.")


@aws.command("login")
@aws_options
def login_command(aws_settings: AwsSettings) -> None:
    """Start an MFA session and cache it so later commands and Dagster runs need no code."""
    expiry = login(aws_settings, prompt=prompt_for(aws_settings))
    left = expiry - datetime.now(UTC)
    hours, seconds = divmod(max(int(left.total_seconds()), 0), 3600)
    click.echo(
        f"MFA session for {aws_settings.mfa_serial} cached; expires at "
        f"{expiry.isoformat(timespec='seconds')} (in {hours}h {seconds // 60:02d}m)."
    )
