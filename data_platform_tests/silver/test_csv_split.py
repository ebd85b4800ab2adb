"""Quote-aware record boundaries: pieces always hold whole records."""

from __future__ import annotations

import csv
import io
import random

import pytest

from data_platform.silver.csv_split import count_records, record_end, split_records


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _tricky_rows(count: int) -> list[list[str]]:
    rnd = random.Random(3)
    cells = ["plain", 'say "hi"', "two\nlines", "comma, inside", "끝\n\n줄", '"\n"', ""]
    return [[str(i), rnd.choice(cells), rnd.choice(cells)] for i in range(count)]


def test_record_end_skips_line_breaks_inside_quotes() -> None:
    assert record_end(b'a,"x\ny"\nb,"open\n') == len(b'a,"x\ny"\n')
    assert record_end(b'a,"never closed\nstill\n') == 0
    assert record_end(b"no break") == 0
    assert record_end(b"b\n", quotes_before=1) == 0  # the line break is inside an open quote


@pytest.mark.parametrize("piece_bytes", [1, 7, 64, 1000])
def test_split_pieces_are_whole_records_whatever_the_block_size(piece_bytes: int) -> None:
    rows = _tricky_rows(300)
    data = _csv(rows)
    blocks = [data[i : i + 13] for i in range(0, len(data), 13)]
    pieces = list(split_records(blocks, piece_bytes))
    assert b"".join(pieces) == data
    parsed = [row for piece in pieces for row in csv.reader(io.StringIO(piece.decode()))]
    assert parsed == rows  # no piece cut a record (a cut would break the csv parse)
    assert count_records(blocks) == 300
    assert sum(count_records([piece]) for piece in pieces) == 300


def test_count_records_counts_a_last_record_without_line_break() -> None:
    assert count_records([b"a,b\nc,", b'"d\ne"']) == 2
    assert count_records([b"a\n", b"b\n"]) == 2
    assert count_records([]) == 0
