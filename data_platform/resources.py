"""Dagster resources over `data_platform.core`: Postgres, AWS sessions and object stores.

Every session, client and connection is made when a run asks for it, never when the code location
loads, so a long-lived code server never holds an expired STS token. Secrets come in through
`dg.EnvVar`, which Dagit shows by name, never by value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg

from data_platform.core.postgres import PostgresSettings, connection, mask_url

if TYPE_CHECKING:
    import boto3
    from psycopg2.extensions import connection as PgConnection

    from data_platform.core.aws import AwsSettings
    from data_platform.core.objectstore import ObjectStore


class PostgresResource(dg.ConfigurableResource):
    """A Postgres database: a URL (`postgresql://user:pass@host:port/db`), or the fields."""

    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "postgres"
    user: str = "postgres"
    password: str | None = None
    sslmode: str | None = None
    rds: bool = False  # RDS: sslmode defaults to `require`
    application_name: str = "data-platform"

    def __repr_args__(self) -> Any:
        """pydantic builds repr() and str() from these: the password never shows."""
        for name, value in super().__repr_args__():
            if name == "password" and value is not None:
                yield name, "***"
            elif name == "url" and isinstance(value, str):
                yield name, mask_url(value)
            else:
                yield name, value

    def settings(self) -> PostgresSettings:
        overrides: dict[str, Any] = {"application_name": self.application_name, "rds": self.rds}
        if self.sslmode:
            overrides["sslmode"] = self.sslmode
        if self.url:
            return PostgresSettings.from_url(self.url, **overrides)
        return PostgresSettings(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            **overrides,
        )

    @contextmanager
    def connect(self) -> Iterator[PgConnection]:
        """A connection committed on success, rolled back on error, always closed."""
        with connection(self.settings()) as conn:
            yield conn


class AwsSessionResource(dg.ConfigurableResource):
    """An AWS session made per run: profile/region, cached MFA credentials, optional AssumeRole.

    Unset fields fall back, when the session is opened, to boto3's own settings (AWS_PROFILE,
    AWS_DEFAULT_REGION, AWS_ENDPOINT_URL) and to DATA_PLATFORM_AWS_MFA_SERIAL /
    DATA_PLATFORM_AWS_ROLE_ARN.
    Runs never prompt: MFA credentials come from `data-platform aws login`'s cache.
    """

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    mfa_serial: str | None = None
    mfa_duration_seconds: int = 3600
    role_arn: str | None = None
    role_session_name: str = "data-platform-dagster"

    def aws_settings(self) -> AwsSettings:
        from data_platform.core.aws import AwsSettings

        return AwsSettings(
            profile=self.profile,
            region=self.region,
            endpoint_url=self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
            mfa_serial=self.mfa_serial or os.environ.get("DATA_PLATFORM_AWS_MFA_SERIAL") or None,
            mfa_duration_seconds=self.mfa_duration_seconds,
            role_arn=self.role_arn or os.environ.get("DATA_PLATFORM_AWS_ROLE_ARN") or None,
            role_session_name=self.role_session_name,
        )

    def session(self) -> boto3.Session:
        from data_platform.core.aws import open_session

        return open_session(self.aws_settings())

    def client(self, service: str) -> Any:
        from data_platform.core.aws import make_client, open_session

        settings = self.aws_settings()
        return make_client(open_session(settings), service, settings)


class ObjectStoreResource(dg.ConfigurableResource):
    """One store for a laptop and production: `s3://bucket/prefix` or a local folder path."""

    url: str
    aws: AwsSessionResource

    def store(self) -> ObjectStore:
        from data_platform.core.objectstore import object_store_from_url

        return object_store_from_url(self.url, client_factory=lambda: self.aws.client("s3"))


def shared_resources() -> dict[str, Any]:
    """The resources every domain's assets use, configured from the environment at run time."""
    aws = AwsSessionResource()
    return {
        "postgres": PostgresResource(url=dg.EnvVar("DATA_PLATFORM_PG_URL")),
        "aws": aws,
        "raw_store": ObjectStoreResource(url=dg.EnvVar("DATA_PLATFORM_RAW_URL"), aws=aws),
    }
