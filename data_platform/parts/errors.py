"""The one error type of the parts engine, and how database errors become it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping


class PartsError(Exception):
    """A stage cannot run: bad supplier config, unreachable store or database, bad stored data.
    The message says what is wrong and what to do; no table or object is left half-written."""


@contextlib.contextmanager
def database_errors(action: str, advice: Mapping[str, str]) -> Iterator[None]:
    """psycopg2's errors as one line starting with `action`: PostgresError when the connection
    failed (run again later), PartsError when the database refused. The line names condition,
    column and constraint, never a row's values (`core.pg_errors`; `advice` says what to do for
    SQLSTATE classes 22 and 23)."""
    import psycopg2

    from data_platform.core.pg_errors import db_error_line
    from data_platform.core.postgres import PostgresError

    try:
        yield
    except psycopg2.Error as exc:
        lost = isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
        error = PostgresError if lost else PartsError
        raise error(f"{action}: {db_error_line(exc, advice)}") from None
