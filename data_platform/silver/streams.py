"""What a reader hands to COPY: a byte stream plus what COPY needs to know about it."""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass


class ReadStream(ABC):
    """A `read(size)` source for psycopg2's copy_expert; subclasses produce the blocks.

    psycopg2 turns an exception raised inside read() into a generic "COPY failed"; the original
    is kept in `failure` so the loader can report (or act on) the real cause.
    """

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.rows_seen = 0  # rows (or, on the raw CSV path, line breaks) passed on so far
        self.on_progress: Callable[[int], None] | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            block = self._next_block(size)
        except BaseException as exc:
            self.failure = exc
            raise
        if self.on_progress is not None and block:
            self.on_progress(self.rows_seen)
        return block

    @abstractmethod
    def _next_block(self, size: int) -> bytes:
        """The next block of at most about `size` bytes; b"" at the end."""


class PrefetchStream(ReadStream):
    """Blocks from an iterator produced in a background thread, at most `depth` ahead, so
    producing the next block (e.g. polars writing CSV, which releases the GIL) overlaps with
    Postgres parsing the previous one. `close()` stops the producer."""

    _DONE = object()

    def __init__(self, blocks: Iterator[bytes], depth: int = 2) -> None:
        super().__init__()
        self._blocks = blocks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _produce(self) -> None:
        try:
            for block in self._blocks:
                if not self._put(block):
                    return
        except BaseException as exc:
            self._put(exc)
        else:
            self._put(self._DONE)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _next_block(self, size: int) -> bytes:
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, name="silver-prefetch")
            self._thread.daemon = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is self._DONE:
                self._queue.put(item)  # later reads keep seeing the end
                return b""
            if isinstance(item, BaseException):
                raise item
            if item:  # an empty block is not the end: skip it
                self.rows_seen += item.count(b"\n")  # type: ignore[attr-defined]
                return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


@dataclass
class CopyInput:
    """One file, ready for `COPY <staging> (<columns>) FROM STDIN (FORMAT csv, ENCODING ...)`."""

    name: str
    file_format: str
    encoding: str | None  # the text encoding detected and used; None for Parquet
    pg_encoding: str  # what COPY is told: UTF8 or UHC
    columns: tuple[str, ...]  # table columns in the stream's field order
    stream: ReadStream
    first_line: int  # the file's line (or row) number of COPY's line 1
    unit: str  # "line" for CSV, "row" for Parquet

    def position(self, copy_line: int) -> str:
        """COPY's line number as a place in the file. Postgres counts records, so a quoted field
        spanning lines shifts the physical line."""
        if self.unit == "row":
            return f"row {copy_line + self.first_line - 1:,}"
        return f"data row {copy_line:,} (line {copy_line + self.first_line - 1:,})"
