"""Rows from the source into the staging table inside this process: the source's
`COPY (SELECT ...) TO STDOUT` feeds the target's `COPY ... FROM STDIN` through an OS pipe in
1 MiB blocks, one thread per side. Memory stays flat; no shell, no psql, no command lines."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

from data_platform.core.postgres import COPY_BLOCK_BYTES, copy_from_stream
from data_platform.replication.tables import TableRef

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection
    from psycopg2.sql import Composable


def source_query(
    ref: TableRef,
    columns: Sequence[str],
    where: str | None,
    condition: Composable | None = None,
) -> Composable:
    """SELECT the columns; `where` is trusted text from the spec file, `condition` composed
    SQL (the watermark's)."""
    from psycopg2 import sql

    conditions = [sql.SQL("({})").format(sql.SQL(where))] if where else []
    if condition is not None:
        conditions.append(condition)
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), ref.sql()
    )
    if conditions:
        query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
    return query


class _CountingReader:
    """The read end of the pipe, reporting the bytes that went by."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self.raw, self.on_bytes, self.total = raw, on_bytes, 0

    def read(self, size: int = -1) -> bytes:
        block = self.raw.read(size)
        self.total += len(block)
        if self.on_bytes is not None:
            self.on_bytes(self.total)
        return block


def stream_copy(
    source: PgConnection,
    query: Composable,
    target: PgConnection,
    staging: Composable,
    columns: Sequence[str],
    binary: bool,
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Copy the rows of `query` into `staging`; returns the rows the source sent (its count in
    its snapshot, so no separate count is needed) and the rows the target received."""
    from psycopg2 import sql

    copy_format = sql.SQL("binary" if binary else "text")
    copy_out = sql.SQL("COPY ({}) TO STDOUT (FORMAT {})").format(query, copy_format)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        staging, sql.SQL(", ").join(map(sql.Identifier, columns)), copy_format
    )
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=COPY_BLOCK_BYTES)
    writer = os.fdopen(write_fd, "wb", buffering=COPY_BLOCK_BYTES)
    failures: list[BaseException] = []
    sent: list[int] = []

    def produce() -> None:
        try:
            with source.cursor() as cur:
                cur.copy_expert(copy_out, writer, size=COPY_BLOCK_BYTES)
                sent.append(cur.rowcount)
        except BaseException as exc:  # handed to the main thread below
            failures.append(exc)
        finally:
            with contextlib.suppress(OSError):  # the reader may be gone already
                writer.close()

    producer = threading.Thread(target=produce, name="replication-copy-out", daemon=True)
    producer.start()
    try:
        received = copy_from_stream(target, copy_in, _CountingReader(reader, on_bytes))
    finally:
        reader.close()  # a failed target makes the producer's next write fail, so it stops
        producer.join()
    if failures:
        raise failures[0]
    return sent[0], received
