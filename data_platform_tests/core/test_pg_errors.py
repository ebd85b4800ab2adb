"""Database errors in one line without a row's value, against a real Postgres."""

from __future__ import annotations

import io

import psycopg2
import pytest

from data_platform.core.pg_errors import db_error_line, error_facts, safe_message
from data_platform.core.postgres import connect

NAME = "홍길동"
ADVICE = {"22": "fix the value", "23": "fix the row"}


def failing_copy(pg_url: str, table: str, data: str) -> psycopg2.Error:
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute(table)
            with pytest.raises(psycopg2.Error) as caught:
                cur.copy_expert("COPY t FROM STDIN WITH (FORMAT csv)", io.StringIO(data))
    finally:
        conn.close()
    assert NAME in str(caught.value)  # what Postgres itself says
    return caught.value


def test_a_bad_value_gives_condition_column_and_copy_row(pg_url: str) -> None:
    exc = failing_copy(pg_url, "CREATE TABLE t (id int, floor int)", f"1,2\n2,{NAME}\n")
    facts = error_facts(exc)
    assert (facts.condition, facts.column, facts.copy_line) == (
        "invalid_text_representation",
        "floor",
        2,
    )
    assert db_error_line(exc, ADVICE) == (
        "invalid_text_representation (SQLSTATE 22P02), column floor, copy row 2: fix the value "
        "(values are not shown)"
    )


def test_a_row_quoted_in_the_context_cannot_pose_as_a_column(pg_url: str) -> None:
    """Postgres quotes the whole line for a CHECK violation: a value that looks like the
    context's `, column x:` must not be read as the column."""
    exc = failing_copy(
        pg_url,
        "CREATE TABLE t (id int, memo text CONSTRAINT short CHECK (length(memo) < 5))",
        f'1,"{NAME}, column memo: secret"\n',
    )
    line = db_error_line(exc, ADVICE)
    assert line == (
        "check_violation (SQLSTATE 23514), table public.t, constraint short, copy row 1: "
        "fix the row (values are not shown)"
    )


def test_other_errors_keep_postgres_first_line(pg_url: str) -> None:
    conn = connect(pg_url)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.Error) as caught:
            cur.execute("SELECT * FROM no_such_table")
    finally:
        conn.close()
    assert safe_message(caught.value) == 'relation "no_such_table" does not exist'
