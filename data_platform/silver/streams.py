"""What a reader hands to COPY: pieces of CSV, COPY text or binary COPY data (whole records each),
produced by one thread and shared by several COPY streams, plus what COPY needs to know about
them."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

# Binary COPY's signature, flags (none) and header extension length (0); the trailer is -1.
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
BINARY_TRAILER = b"\xff\xff"


@dataclass(frozen=True)
class Piece:
    """Whole records of one file. Postgres numbers a COPY's lines physically (a quoted line
    break counts), so every piece says which lines it holds; readers that count rows (Parquet,
    re-written CSV) also say which rows."""

    data: bytes
    first_line: int  # 1-based line of the file's data (after any header) it starts at
    lines: int  # line breaks, plus one for a last line without a break
    first_row: int | None = None  # 1-based data row of its first record, when known
    rows: int | None = None


def lines_in(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


class CopyCancelled(Exception):
    """Another stream of the same file failed; this one stops too."""


class PieceQueue:
    """Pieces from `pieces`, produced in a background thread at most `depth` ahead (so memory
    stays flat) and taken by any number of streams. `cancel()` stops producer and takers."""

    _DONE = object()

    def __init__(self, pieces: Iterator[Piece], depth: int) -> None:
        self._pieces = pieces
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="silver-pieces", daemon=True)
        self.lines_seen = 0  # line breaks produced so far, for progress

    def start(self) -> None:
        self._thread.start()

    def _produce(self) -> None:
        try:
            for piece in self._pieces:
                self.lines_seen += piece.lines
                if not self._put(piece):
                    return
        except BaseException as exc:
            self._put(exc)
        else:
            self._put(self._DONE)

    def _put(self, item: object) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Piece | None:
        """The next piece; None at the end. Re-raises the producer's error."""
        while True:
            if self._cancelled.is_set():
                raise CopyCancelled
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is self._DONE or isinstance(item, BaseException):
                self._queue.put(item)  # every other taker sees the end (or the error) too
            if item is self._DONE:
                return None
            if isinstance(item, BaseException):
                raise item
            return item  # type: ignore[return-value]

    def cancel(self) -> None:
        self._cancelled.set()

    def close(self) -> None:
        self.cancel()
        self._thread.join(timeout=30)


class PieceStream:
    """A `read(size)` source for psycopg2's copy_expert, taking pieces from a shared queue.

    psycopg2 turns an exception raised inside read() into a generic "COPY failed"; the original
    is kept in `failure`. `taken` lists the pieces this stream sent (without their bytes), so a
    COPY error's line number, which counts records of this stream only, maps back to the file.
    """

    def __init__(self, pieces: PieceQueue, framing: tuple[bytes, bytes] = (b"", b"")) -> None:
        self._pieces = pieces
        self._header, self._trailer = framing
        self.failure: BaseException | None = None
        self.taken: list[Piece] = []

    def read(self, size: int = -1) -> bytes:
        if self._header:
            header, self._header = self._header, b""
            return header
        try:
            piece = self._pieces.get()
        except BaseException as exc:
            self.failure = exc
            raise
        if piece is None:
            trailer, self._trailer = self._trailer, b""
            return trailer
        self.taken.append(dataclasses.replace(piece, data=b""))
        return piece.data


@dataclass
class CopyInput:
    """One file, ready for `COPY <staging> (<columns>) FROM STDIN (FORMAT ..., ENCODING ...)`."""

    name: str
    file_format: str
    encoding: str | None  # the text encoding detected and used; None for Parquet
    pg_encoding: str  # what COPY is told: UTF8 or UHC
    columns: tuple[str, ...]  # table columns in the stream's field order
    pieces: Iterator[Piece]
    first_line: int  # the file's line number of data line 1 (2 after a CSV header)
    unit: str  # "line" for CSV, "row" for Parquet
    # Raw CSV only: the data row (record) at a data line, found by re-reading the file.
    row_at_line: Callable[[int], int] | None = None
    # text: Postgres' own format, a line per row; binary: a record per row
    copy_format: Literal["csv", "text", "binary"] = "csv"

    @property
    def framing(self) -> tuple[bytes, bytes]:
        """What every COPY stream sends before its first piece and after its last."""
        return (BINARY_HEADER, BINARY_TRAILER) if self.copy_format == "binary" else (b"", b"")

    def position(self, taken: Sequence[Piece], copy_line: int) -> str:
        """Line `copy_line` of a COPY stream that sent `taken`, as a place in the file."""
        before = 0
        for piece in taken:
            if copy_line <= before + piece.lines:
                return self._place(piece, copy_line - before)
            before += piece.lines
        return f"line {copy_line:,} of a COPY stream"  # past what it sent: cannot happen

    def _place(self, piece: Piece, line_in_piece: int) -> str:
        if piece.first_row is None or piece.rows is None:  # the file's own bytes
            line = piece.first_line + line_in_piece - 1
            file_line = f"line {line + self.first_line - 1:,}"
            if self.row_at_line is None:
                return file_line
            return f"data row {self.row_at_line(line):,} ({file_line})"
        name = "row" if self.unit == "row" else "data row"
        if piece.rows == piece.lines:  # one line per row: exact
            return f"{name} {piece.first_row + line_in_piece - 1:,}"
        return f"{name}s {piece.first_row:,}-{piece.first_row + piece.rows - 1:,}"
