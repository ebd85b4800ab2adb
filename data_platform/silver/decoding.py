"""Text encodings of raw CSV files: detection in the order utf-8-sig, utf-8, cp949 and strict,
incremental validation that reports the byte offset of the first byte that does not decode.

Bytes are never transcoded to EUC-KR here (Python's euc_kr codec writes make-up sequences):
cp949 files go to Postgres as they are, with `ENCODING 'UHC'` (UHC is Postgres' name for cp949).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from data_platform.silver.errors import SilverLoadError

BOM = b"\xef\xbb\xbf"
ENCODING_ORDER = ("utf-8-sig", "utf-8", "cp949")
PG_ENCODINGS = {"utf-8-sig": "UTF8", "utf-8": "UTF8", "cp949": "UHC"}
_TRUNCATED_TAIL = ("unexpected end of data", "incomplete multibyte sequence")


class UndecodableBytes(Exception):
    """Bytes at `offset` (from the start of the file's text) are not valid `encoding`."""

    def __init__(self, encoding: str, offset: int, byte: int) -> None:
        super().__init__(f"{encoding} fails at byte offset {offset:,} (0x{byte:02x})")
        self.encoding = encoding
        self.offset = offset
        self.byte = byte


class StrictDecoder:
    """Feeds blocks of a byte stream through a strict decoder; a multibyte character split
    across blocks is carried over, so any block size works."""

    def __init__(self, encoding: str, offset: int = 0) -> None:
        self.encoding = encoding
        self.codec = "utf-8" if encoding == "utf-8-sig" else encoding
        self.offset = offset  # stream offset of the next byte fed
        self._pending = b""

    def feed(self, block: bytes, *, final: bool = False, text: bool = False) -> str:
        """Validate `block`; returns the decoded text when `text` (else "")."""
        data = self._pending + block if self._pending else block
        base = self.offset - len(self._pending)
        self.offset += len(block)
        try:
            decoded = data.decode(self.codec)
        except UnicodeDecodeError as exc:
            truncated = exc.end == len(data) and exc.reason in _TRUNCATED_TAIL
            if final or not truncated:
                raise UndecodableBytes(self.encoding, base + exc.start, data[exc.start]) from None
            self._pending = data[exc.start :]
            # Everything before exc.start decoded: a strict decoder stops at the first error.
            return data[: exc.start].decode(self.codec) if text else ""
        self._pending = b""
        return decoded if text else ""


def candidate_encodings(head: bytes) -> tuple[str, ...]:
    """utf-8-sig only when the file starts with a BOM (then plain utf-8 adds nothing)."""
    return ("utf-8-sig", "cp949") if head.startswith(BOM) else ("utf-8", "cp949")


def text_start(encoding: str) -> int:
    return len(BOM) if encoding == "utf-8-sig" else 0


def choose_encoding(
    name: str,
    head: bytes,
    at_eof: bool,
    failed: dict[str, UndecodableBytes],
) -> str:
    """The first candidate that decodes `head` (the file's first bytes) and has not failed on
    this file before; failures are recorded in `failed`. Raises SilverLoadError if none fits."""
    for encoding in candidate_encodings(head):
        if encoding in failed:
            continue
        start = text_start(encoding)
        try:
            StrictDecoder(encoding, start).feed(head[start:], final=at_eof)
        except UndecodableBytes as exc:
            failed[encoding] = exc
            continue
        return encoding
    raise undecodable_error(name, failed)


def undecodable_error(name: str, failed: Mapping[str, UndecodableBytes]) -> SilverLoadError:
    tried = "; ".join(str(failed[e]) for e in ENCODING_ORDER if e in failed)
    # The encoding that decodes furthest is the file's likely encoding, with one bad spot.
    likely = max(failed.values(), key=lambda exc: exc.offset)
    return SilverLoadError(
        f"{name}: cannot decode the file as {' or '.join(_names(failed))} ({tried}). It is most "
        f"likely {likely.encoding} with a bad byte at offset {likely.offset:,}: fix that byte or "
        "re-save the file as UTF-8 (or CP949) and load again."
    )


def _names(failed: Iterable[str]) -> list[str]:
    return [e for e in ENCODING_ORDER if e in failed]
