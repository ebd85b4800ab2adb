"""Record boundaries in CSV bytes, found by counting quotes.

In CSV (RFC 4180, Postgres' `FORMAT csv` with its default quote `"`), a line break ends a record
only outside quotes, and a doubled quote inside a quoted field adds two quotes: so a line break
ends a record exactly when the quotes before it (from a record boundary) are even in number.
`bytes.count` does the counting in C, which keeps this scan far cheaper than parsing.

UTF-8 and CP949 never use the bytes of `"` or a line break inside a multibyte character (CP949's
trail bytes are 0x41-0xFE), so the scan works on the raw bytes of either encoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

QUOTE = b'"'
NEWLINE = b"\n"


def record_end(data: bytes | bytearray, quotes_before: int = 0) -> int:
    """The index just after the last line break that ends a record in `data` (which starts at
    a record boundary, after `quotes_before` quotes of an unfinished record); 0 when none does."""
    quotes = quotes_before + data.count(QUOTE)
    end = len(data)
    while (newline := data.rfind(NEWLINE, 0, end)) >= 0:
        quotes -= data.count(QUOTE, newline + 1, end)
        if quotes % 2 == 0:
            return newline + 1
        end = newline
    return 0


def split_records(blocks: Iterable[bytes], piece_bytes: int) -> Iterator[bytes]:
    """The concatenated `blocks` re-cut into pieces of whole records, each about `piece_bytes`
    (longer only when one record is); the last piece may lack a final line break."""
    pending = bytearray()
    for block in blocks:
        pending += block
        if len(pending) < piece_bytes:
            continue
        cut = record_end(pending)
        if cut:
            yield bytes(pending[:cut])
            del pending[:cut]
    if pending:
        yield bytes(pending)


class RecordCounter:
    """Counts CSV records fed block by block (a record split across blocks counts once)."""

    def __init__(self) -> None:
        self.records = 0
        self._odd = False  # inside a quoted field at the end of the last block
        self._open = False  # bytes of an unfinished record seen

    def feed(self, block: bytes) -> None:
        if not block:
            return
        if QUOTE not in block and not self._odd:
            self.records += block.count(NEWLINE)
        else:
            segments = block.split(QUOTE)
            # Segments alternate outside/inside quotes, starting inside when the last block
            # ended inside a quoted field.
            outside = segments[1::2] if self._odd else segments[0::2]
            self.records += sum(segment.count(NEWLINE) for segment in outside)
            self._odd ^= (len(segments) - 1) % 2 == 1
        self._open = not block.endswith(NEWLINE) or self._odd

    def total(self) -> int:
        """Records so far, counting an unfinished last record (no final line break)."""
        return self.records + (1 if self._open else 0)


def count_records(blocks: Iterable[bytes]) -> int:
    counter = RecordCounter()
    for block in blocks:
        counter.feed(block)
    return counter.total()
