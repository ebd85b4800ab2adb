"""CSV files (.csv, .csv.gz) as COPY input.

Fast path: when every header column is a table column, the file's own bytes (after the header
line) stream to `COPY ... (FORMAT csv, ENCODING 'UTF8'|'UHC')` in 1 MiB blocks. The encoding is
chosen on the first MiB; Postgres validates every byte, and if it rejects one the file is scanned
for the exact byte offset (and retried with the next encoding). Files with extra columns to
ignore go through the csv module in chunks of `chunk_rows` rows (re-encoded as UTF-8), so memory
stays bounded.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import itertools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from data_platform.core.postgres import COPY_BLOCK_BYTES
from data_platform.silver.columns import extra_file_columns
from data_platform.silver.csv_split import RecordCounter, count_records, split_records
from data_platform.silver.decoding import (
    PG_ENCODINGS,
    StrictDecoder,
    UndecodableBytes,
    choose_encoding,
    text_start,
)
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import TablePreset
from data_platform.silver.sources import SourceFile
from data_platform.silver.streams import CopyInput, Piece, lines_in

SAMPLE_BYTES = 1 << 20  # encoding detection looks at this much (or the whole file)
MAX_HEADER_BYTES = 16 << 20
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


def _read_head(name: str, raw: BinaryIO) -> tuple[bytes, bool]:
    """At least SAMPLE_BYTES (or the whole file) and always the whole header line."""
    head = bytearray()
    while True:
        block = _read(name, raw, COPY_BLOCK_BYTES if head else SAMPLE_BYTES)
        if not block:
            return bytes(head), True
        head += block
        if len(head) >= SAMPLE_BYTES and b"\n" in head:
            return bytes(head), False
        if len(head) > MAX_HEADER_BYTES:
            raise SilverLoadError(f"{name}: no line break in the first 16 MiB; is this a CSV?")


def _read(name: str, raw: BinaryIO, size: int) -> bytes:
    try:
        return raw.read(size)
    except _STREAM_ERRORS as exc:
        raise SilverLoadError(f"{name}: cannot read the file ({exc}); is it truncated?") from exc


def parse_header(name: str, text: str) -> list[str]:
    try:
        header = [column.strip() for column in next(csv.reader([text.rstrip("\r\n")]))]
    except (csv.Error, StopIteration) as exc:
        raise SilverLoadError(f"{name}: cannot parse the header line ({exc})") from None
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise SilverLoadError(f"{name}: the header repeats columns {duplicates}; rename them")
    return header


def match_columns(
    name: str, header: list[str], preset: TablePreset
) -> tuple[tuple[str, ...], list[int] | None]:
    """The table columns in file order, and the indexes to keep (None when all are kept)."""
    if not extra_file_columns(name, header, preset):
        return tuple(header), None
    known = set(preset.column_names)
    keep = [i for i, column in enumerate(header) if column in known]
    return tuple(header[i] for i in keep), keep


def _blocks(name: str, first: bytes, raw: BinaryIO) -> Iterator[bytes]:
    if first:
        yield first
    while block := _read(name, raw, COPY_BLOCK_BYTES):
        yield block


def _raw_pieces(name: str, first: bytes, raw: BinaryIO) -> Iterator[Piece]:
    """The file's bytes after the header, as they are, cut at record boundaries. Postgres checks
    the encoding while it parses; only when it rejects a byte is the file scanned here for the
    exact offset (`find_bad_byte`), which keeps Python's decoder off the fast path."""
    line = 1
    for data in split_records(_blocks(name, first, raw), COPY_BLOCK_BYTES):
        piece = Piece(data, line, lines_in(data))
        line += piece.lines
        yield piece


def _row_at_line(source: SourceFile, data_start: int, line: int) -> int:
    """The data row (record) that data line `line` belongs to, by re-reading the file."""
    with _open_text(source) as raw:
        _read(source.name, raw, data_start)
        counter, breaks_left = RecordCounter(), line - 1
        while breaks_left > 0 and (block := _read(source.name, raw, COPY_BLOCK_BYTES)):
            breaks = block.count(b"\n")
            if breaks >= breaks_left:  # stop just after the line break before `line`
                cut = -1
                for _ in range(breaks_left):
                    cut = block.index(b"\n", cut + 1)
                block = block[: cut + 1]
            counter.feed(block)
            breaks_left -= min(breaks, breaks_left)
        return counter.records + 1


def count_csv_records(source: SourceFile) -> int:
    """Data rows of a CSV file by a quote-aware scan of its bytes alone (no decoding, no
    parsing), independent of the path that feeds COPY: a check against what Postgres holds."""
    with _open_text(source) as raw:
        records = count_records(iter(lambda: _read(source.name, raw, COPY_BLOCK_BYTES), b""))
    return max(records - 1, 0)  # the header


def find_bad_byte(source: SourceFile, encoding: str) -> UndecodableBytes | None:
    """The first byte of the file that does not decode as `encoding`, scanning block by block."""
    with _open_text(source) as raw:
        start = text_start(encoding)
        _read(source.name, raw, start)
        decoder = StrictDecoder(encoding, start)
        try:
            while block := _read(source.name, raw, COPY_BLOCK_BYTES):
                decoder.feed(block)
            decoder.feed(b"", final=True)
        except UndecodableBytes as exc:
            return exc
    return None


def _text_lines(name: str, first: bytes, raw: BinaryIO, decoder: StrictDecoder) -> Iterator[str]:
    """Decoded lines ending in "\\n" (the csv module joins quoted multi-line fields itself)."""
    pending = ""
    block = first
    while True:
        text = decoder.feed(block, final=not block, text=True)
        if not block:
            break
        parts = (pending + text).split("\n")
        pending = parts.pop()
        for part in parts:
            yield part + "\n"
        block = _read(name, raw, COPY_BLOCK_BYTES)
    if pending:
        yield pending


def csv_records(name: str, lines: Iterator[str], width: int) -> Iterator[list[str]]:
    """Rows of the file after its header, each checked to have `width` fields."""
    reader = csv.reader(lines)
    try:
        for row in reader:
            if len(row) != width:
                raise SilverLoadError(
                    f"{name}: line {reader.line_num + 1} has {len(row)} fields but the header has "
                    f"{width}; fix that row (a stray comma or quote?) and load again."
                )
            yield row
    except csv.Error as exc:
        raise SilverLoadError(f"{name}: line {reader.line_num + 1}: {exc}") from None


def _transformed_pieces(
    rows: Iterator[list[str]], keep: list[int], chunk_rows: int
) -> Iterator[Piece]:
    """Chosen columns of each row, `chunk_rows` rows at a time, as UTF-8 CSV. (The csv module
    cannot tell a quoted empty field from an empty one, so "" arrives as NULL on this path.)"""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    first_row, first_line, count = 1, 1, 0
    for row in rows:
        writer.writerow([row[i] for i in keep])
        count += 1
        if count == chunk_rows:
            data = buffer.getvalue().encode("utf-8")
            yield Piece(data, first_line, lines_in(data), first_row, count)
            buffer.seek(0)
            buffer.truncate()
            first_row, first_line, count = first_row + count, first_line + lines_in(data), 0
    if count:
        data = buffer.getvalue().encode("utf-8")
        yield Piece(data, first_line, lines_in(data), first_row, count)


@contextlib.contextmanager
def _open_text(source: SourceFile) -> Iterator[BinaryIO]:
    with source.open() as raw:
        if source.file_format == "csv.gz":
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield raw


@dataclass
class _OpenedCsv:
    encoding: str
    header: list[str]
    columns: tuple[str, ...]
    keep: list[int] | None
    rest: bytes  # bytes read past the header line
    data_start: int  # offset of the first data byte in the file's text
    raw: BinaryIO
    decoder: StrictDecoder

    def records(self, name: str) -> Iterator[list[str]]:
        lines = _text_lines(name, self.rest, self.raw, self.decoder)
        return csv_records(name, lines, len(self.header))


@contextlib.contextmanager
def _open_parsed(
    source: SourceFile, preset: TablePreset | None, failed: dict[str, UndecodableBytes]
) -> Iterator[_OpenedCsv]:
    """The file opened past its header; without a preset every header column is kept."""
    name = source.name
    with _open_text(source) as raw:
        head, at_eof = _read_head(name, raw)
        if not head:
            raise SilverLoadError(f"{name}: the file is empty; a CSV needs a header line")
        encoding = choose_encoding(name, head, at_eof, failed)
        header_end = head.find(b"\n") + 1 or len(head)
        codec = StrictDecoder(encoding).codec
        header = parse_header(name, head[text_start(encoding) : header_end].decode(codec))
        columns, keep = (
            (tuple(header), None) if preset is None else match_columns(name, header, preset)
        )
        decoder = StrictDecoder(encoding, header_end)
        rest = head[header_end:]
        yield _OpenedCsv(encoding, header, columns, keep, rest, header_end, raw, decoder)


@contextlib.contextmanager
def open_csv(
    source: SourceFile,
    preset: TablePreset,
    failed: dict[str, UndecodableBytes],
    chunk_rows: int,
) -> Iterator[CopyInput]:
    """COPY input for one CSV file, using the first encoding not yet in `failed`.

    A bad byte found while streaming raises UndecodableBytes (kept as the stream's failure);
    the caller adds it to `failed` and opens the file again with the next encoding.
    """
    with _open_parsed(source, preset, failed) as opened:
        row_at_line: Callable[[int], int] | None = None
        if opened.keep is None:
            pieces = _raw_pieces(source.name, opened.rest, opened.raw)
            pg_encoding = PG_ENCODINGS[opened.encoding]
            row_at_line = functools.partial(_row_at_line, source, opened.data_start)
        else:
            rows = opened.records(source.name)
            pieces = _transformed_pieces(rows, opened.keep, chunk_rows)
            pg_encoding = "UTF8"
        yield CopyInput(
            source.name,
            source.file_format,
            opened.encoding,
            pg_encoding,
            opened.columns,
            pieces,
            first_line=2,
            unit="line",
            row_at_line=row_at_line,
        )


def count_csv_rows(
    source: SourceFile, preset: TablePreset, failed: dict[str, UndecodableBytes]
) -> tuple[str, int]:
    """(encoding, data rows) of a CSV file, read through once and checked like a load."""
    with _open_parsed(source, preset, failed) as opened:
        return opened.encoding, sum(1 for _ in opened.records(source.name))


def infer_csv_columns(
    source: SourceFile,
    failed: dict[str, UndecodableBytes],
    add_rows: Callable[[list[str], Iterator[list[str]]], None],
    sample_rows: int,
) -> None:
    """Feed the header and up to `sample_rows` rows of a CSV file to `add_rows`."""
    with _open_parsed(source, None, failed) as opened:
        add_rows(opened.header, itertools.islice(opened.records(source.name), sample_rows))
