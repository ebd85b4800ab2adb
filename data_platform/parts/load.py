"""`parts_prices`: COPY the day's price ranges into a TEMP staging table, then one
`INSERT … ON CONFLICT … DO UPDATE`, all in one transaction (nothing is left behind on error, and
the TEMP table dies with the session even after kill -9). A database error is one line that names
the condition, column and constraint, never a price row's values (core.pg_errors)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from psycopg2 import sql

from data_platform.core.postgres import copy_from_stream, transaction
from data_platform.parts.errors import database_errors
from data_platform.parts.transform import PRICE_COLUMNS

if TYPE_CHECKING:
    import polars as pl
    from psycopg2.extensions import connection as PgConnection

TABLE = "parts_prices"
KEY = ("part_official_name", "car_type", "extracted_at")
_STAGING = "parts_prices_staging"
# Only a table changed after parts created it can refuse the rows parts computes.
_ADVICE = {
    "22": "a price row does not fit the table's column types, which differ from those parts "
    "creates; restore those types and load again",
    "23": "a price row breaks a constraint that parts does not create; drop or relax it and "
    "load again",
}

_CREATE = sql.SQL(
    """CREATE TABLE IF NOT EXISTS {table} (
    part_official_name text NOT NULL,
    car_type text NOT NULL,
    min_price bigint NOT NULL,
    max_price bigint NOT NULL,
    avg_price bigint NOT NULL,
    offer_count integer NOT NULL,
    extracted_at date NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (part_official_name, car_type, extracted_at)
)"""
)


def ensure_table(conn: PgConnection, table: str = TABLE) -> None:
    with conn.cursor() as cur:
        cur.execute(_CREATE.format(table=sql.Identifier(table)))


def upsert_prices(conn: PgConnection, frame: pl.DataFrame, table: str = TABLE) -> int:
    """Upsert `frame` (PRICE_COLUMNS) into `table`; returns the rows inserted or updated.
    Rows repeating a key are reduced to one (the one with the most offers) before the insert.
    Raises PostgresError when the connection fails, PartsError when the table refuses the rows;
    either way the table is left as it was."""
    with database_errors(f"cannot upsert prices into {table}", _ADVICE):
        return _upsert(conn, frame, table)


def _upsert(conn: PgConnection, frame: pl.DataFrame, table: str) -> int:
    columns = sql.SQL(", ").join(map(sql.Identifier, PRICE_COLUMNS))
    key = sql.SQL(", ").join(map(sql.Identifier, KEY))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in (*PRICE_COLUMNS, "updated_at")
        if c not in KEY
    )
    buffer = io.BytesIO()
    frame.select(PRICE_COLUMNS).write_csv(buffer, include_header=False)
    buffer.seek(0)
    with transaction(conn), conn.cursor() as cur:
        ensure_table(conn, table)
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
            ).format(staging=sql.Identifier(_STAGING), table=sql.Identifier(table))
        )
        copy_from_stream(
            conn,
            sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')").format(
                sql.Identifier(_STAGING), columns
            ),
            buffer,
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {table} ({columns}, updated_at)"
                " SELECT DISTINCT ON ({key}) {columns}, now() FROM {staging}"
                " ORDER BY {key}, offer_count DESC"
                " ON CONFLICT ({key}) DO UPDATE SET {updates}"
            ).format(
                table=sql.Identifier(table),
                columns=columns,
                key=key,
                staging=sql.Identifier(_STAGING),
                updates=updates,
            )
        )
        return cur.rowcount
