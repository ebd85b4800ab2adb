"""Postgres connections (local or RDS), transactions, COPY streaming and safe identifiers.

Passwords live only in the DSN handed to libpq; reprs, logs and error messages show a masked URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable

log = logging.getLogger(__name__)

COPY_BLOCK_BYTES = 1 << 20  # 1 MiB blocks measured fastest for COPY here (DESIGN.md)
_PASSWORD_IN_TEXT = re.compile(r"(password\s*=\s*)(\S+)|(://[^:/@\s]*:)([^@\s]+)(@)", re.IGNORECASE)


class PostgresError(Exception):
    """A connection or statement failed; the message never contains a password."""


@dataclass(frozen=True)
class PostgresSettings:
    """Where and how to connect. `rds=True` defaults sslmode to `require`."""

    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "postgres"
    user: str = "postgres"
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    application_name: str = "data-platform"
    connect_timeout: int = 10
    rds: bool = False

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> PostgresSettings:
        """Parse `postgresql://user:pass@host:port/db?sslmode=...`; keyword overrides win."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg2"):
            raise PostgresError(f"not a Postgres URL (scheme {parts.scheme!r}): {mask_url(url)}")
        query = dict(parse_qsl(parts.query))
        fields: dict[str, Any] = {
            "host": unquote(parts.hostname or "127.0.0.1"),
            "port": parts.port or 5432,
            "dbname": unquote(parts.path.lstrip("/")) or "postgres",
            "user": unquote(parts.username or "postgres"),
            "password": unquote(parts.password) if parts.password is not None else None,
        }
        for key in ("sslmode", "application_name"):
            if key in query:
                fields[key] = query[key]
        if "connect_timeout" in query:
            fields["connect_timeout"] = int(query["connect_timeout"])
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], prefix: str = "PG", **overrides: Any
    ) -> PostgresSettings:
        """Read `<prefix>HOST/PORT/DATABASE/USER/PASSWORD/SSLMODE` (libpq's PG* or RDS_* names)."""

        def pick(*names: str) -> str | None:
            return next((env[prefix + n] for n in names if env.get(prefix + n)), None)

        fields: dict[str, Any] = {
            "host": pick("HOST"),
            "port": int(port) if (port := pick("PORT")) else None,
            "dbname": pick("DATABASE", "DB", "DBNAME"),
            "user": pick("USER", "USERNAME"),
            "password": pick("PASSWORD"),
            "sslmode": pick("SSLMODE"),
        }
        fields.update(overrides)
        return cls(**{k: v for k, v in fields.items() if v is not None})

    @property
    def effective_sslmode(self) -> str:
        return self.sslmode or ("require" if self.rds else "prefer")

    def with_database(self, dbname: str) -> PostgresSettings:
        return replace(self, dbname=dbname)

    def url(self, *, with_password: bool = False) -> str:
        """A URL for other tools; the password only when asked for (never log that one)."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + (quote(self.password, safe="") if with_password else "***")
        query = f"?sslmode={self.effective_sslmode}" if self.sslmode or self.rds else ""
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.dbname)}{query}"

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "sslmode": self.effective_sslmode,
            "application_name": self.application_name,
            "connect_timeout": self.connect_timeout,
        }
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


def mask_url(url: str) -> str:
    """The URL with any password replaced by `***`."""
    return _PASSWORD_IN_TEXT.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(3)}***{m.group(5)}", url
    )


def as_settings(target: str | PostgresSettings) -> PostgresSettings:
    return target if isinstance(target, PostgresSettings) else PostgresSettings.from_url(target)


def connect(target: str | PostgresSettings) -> PgConnection:
    """Open a psycopg2 connection; errors are re-raised with any password masked."""
    import psycopg2

    settings = as_settings(target)
    try:
        return psycopg2.connect(**settings.connect_kwargs())
    except psycopg2.OperationalError as exc:
        detail = mask_url(str(exc).strip())
        if settings.password:
            detail = detail.replace(settings.password, "***")
        raise PostgresError(f"cannot connect to {settings.url()}: {detail}") from None


@contextmanager
def transaction(conn: PgConnection) -> Iterator[PgConnection]:
    """Commit on success, roll back on any error (including KeyboardInterrupt)."""
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    else:
        conn.commit()


@contextmanager
def connection(target: str | PostgresSettings) -> Iterator[PgConnection]:
    """A connection that is closed afterwards, committed on success and rolled back on error."""
    conn = connect(target)
    try:
        with transaction(conn):
            yield conn
    finally:
        conn.close()


def qualified(schema: str | None, table: str) -> Composable:
    """`"schema"."table"` as a psycopg2.sql composable."""
    from psycopg2 import sql

    return sql.Identifier(schema, table) if schema else sql.Identifier(table)


def copy_from_stream(
    conn: PgConnection, statement: Composable | str, stream: IO[bytes] | IO[str]
) -> int:
    """Run `COPY ... FROM STDIN` reading `stream` in 1 MiB blocks; returns the rows copied."""
    with conn.cursor() as cur:
        cur.copy_expert(statement, stream, size=COPY_BLOCK_BYTES)
        return cur.rowcount


def table_exists(conn: PgConnection, schema: str, table: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables"
            " WHERE schemaname = %s AND tablename = %s)",
            (schema, table),
        )
        return bool(cur.fetchone()[0])
