"""Two real databases per test: `pg_url` is the target, `source_url` a second fresh database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from data_platform import devstack
from data_platform.core.postgres import connect


@pytest.fixture
def source_url(pg_server_url: str) -> Iterator[str]:
    from psycopg2 import sql

    name = f"dp_source_{uuid.uuid4().hex[:12]}"
    url = devstack.create_database(pg_server_url, name)
    yield url
    conn = connect(pg_server_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


def execute(url: str, *statements: str, params: tuple = (), autocommit: bool = False) -> None:
    conn = connect(url)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params or None)
        conn.commit()
    finally:
        conn.close()


def fetch(url: str, query: str, params: tuple = ()) -> list[tuple]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params or None)
            return cur.fetchall()
    finally:
        conn.close()
