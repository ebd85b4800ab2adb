"""`parts_failed_urls`: the URLs of a day that still fail (replaces the seed's DynamoDB table).

One row per (day, supplier, url). `attempts` adds up every HTTP attempt over the first crawl and
the self-healing rounds; `rounds` counts the rounds that retried it. A URL that succeeds leaves
the table.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from psycopg2 import sql

from data_platform.parts.crawler import FetchOutcome
from data_platform.parts.errors import database_errors
from data_platform.parts.page_requests import PageRequest

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

TABLE = "parts_failed_urls"
# Only a table changed after parts created it can refuse what parts writes.
_ADVICE = {
    "22": f"a failed URL does not fit {TABLE}'s column types, which differ from those parts "
    "creates; restore them (or drop the table: the next run creates it again)",
    "23": f"a failed URL breaks a constraint parts does not create on {TABLE}; drop it",
}

_CREATE = sql.SQL(
    """CREATE TABLE IF NOT EXISTS {table} (
    day date NOT NULL,
    supplier text NOT NULL,
    url text NOT NULL,
    car_type text NOT NULL,
    page integer NOT NULL,
    status integer,
    error text NOT NULL,
    attempts integer NOT NULL,
    rounds integer NOT NULL DEFAULT 0,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, supplier, url)
)"""
)


@dataclass(frozen=True)
class FailedUrl:
    day: date
    supplier: str
    url: str
    car_type: str
    page: int
    status: int | None
    error: str
    attempts: int
    rounds: int
    last_attempt_at: datetime

    @property
    def request(self) -> PageRequest:
        return PageRequest(self.car_type, self.page, self.url)


def ensure_table(conn: PgConnection) -> None:
    with database_errors(f"cannot create {TABLE}", _ADVICE), conn.cursor() as cur:
        cur.execute(_CREATE.format(table=sql.Identifier(TABLE)))


def record_outcomes(
    conn: PgConnection,
    day: date,
    supplier: str,
    outcomes: Iterable[FetchOutcome],
    is_round: bool,
) -> None:
    """Failures are upserted (attempts added up), successes deleted; one statement each."""
    outcomes = list(outcomes)
    failed = [o for o in outcomes if not o.ok]
    fixed = [o.request.url for o in outcomes if o.ok]
    with database_errors(f"cannot record failed URLs in {TABLE}", _ADVICE), conn.cursor() as cur:
        if fixed:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE day = %s AND supplier = %s AND url = ANY(%s)").format(
                    sql.Identifier(TABLE)
                ),
                (day, supplier, fixed),
            )
        if failed:
            from psycopg2.extras import execute_values

            rounds = 1 if is_round else 0
            execute_values(
                cur,
                sql.SQL(
                    "INSERT INTO {t} AS f (day, supplier, url, car_type, page, status, error,"
                    " attempts, rounds) VALUES %s ON CONFLICT (day, supplier, url) DO UPDATE SET"
                    " status = EXCLUDED.status, error = EXCLUDED.error,"
                    " attempts = f.attempts + EXCLUDED.attempts,"
                    " rounds = f.rounds + EXCLUDED.rounds, last_attempt_at = now()"
                )
                .format(t=sql.Identifier(TABLE))
                .as_string(cur),
                [
                    (
                        day,
                        supplier,
                        o.request.url,
                        o.request.car_type,
                        o.request.page,
                        o.status,
                        o.error or "failed",
                        o.attempts,
                        rounds,
                    )
                    for o in failed
                ],
            )


def list_failed(conn: PgConnection, day: date, supplier: str | None = None) -> list[FailedUrl]:
    """The day's failing URLs (of one supplier, or all), oldest car type/page first."""
    with database_errors(f"cannot read {TABLE}", _ADVICE):
        return _list_failed(conn, day, supplier)


def _list_failed(conn: PgConnection, day: date, supplier: str | None) -> list[FailedUrl]:
    if not table_exists(conn):
        return []
    query = sql.SQL(
        "SELECT day, supplier, url, car_type, page, status, error, attempts, rounds,"
        " last_attempt_at FROM {} WHERE day = %s AND (%s::text IS NULL OR supplier = %s)"
        " ORDER BY supplier, car_type, page, url"
    ).format(sql.Identifier(TABLE))
    with conn.cursor() as cur:
        cur.execute(query, (day, supplier, supplier))
        return [FailedUrl(*row) for row in cur.fetchall()]


def configured_only(
    rows: list[FailedUrl], car_types: Mapping[str, Collection[str]]
) -> tuple[list[FailedUrl], int]:
    """The rows whose supplier still lists their car type (`car_types`: supplier -> names), and
    how many were left out: a car type dropped from the config is no longer crawled or healed."""
    kept = [row for row in rows if row.car_type in car_types.get(row.supplier, ())]
    return kept, len(rows) - len(kept)


def table_exists(conn: PgConnection) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
        return bool(cur.fetchone()[0])
