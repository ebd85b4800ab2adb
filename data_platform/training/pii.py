"""PII in sample text: e-mail, phone numbers, Korean resident registration numbers, cards.

Phones are found and validated by `phonenumbers` (Korean numbers without a country code, any
number with one); RRN birth dates and check digits by `python-stdnum`; card numbers by its Luhn
check plus the issuer prefixes of the big networks. JSON strings and object keys are scanned: a
number stored as a JSON number is data, not text someone typed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

KINDS = ("EMAIL", "RRN", "CARD", "PHONE")  # also the order in which overlapping spans win

# Internationalised addresses too (홍길동@예시.한국, RFC 6531): any letters in the local part and
# the domain labels. An ASCII top-level domain ends at the first non-ASCII letter, so a Korean
# particle written straight after an address (kim@example.com로) is not taken into it.
_EMAIL = re.compile(
    r"(?<![\w.%+-])[^\W_][\w.%+-]*@[^\W_][\w-]*(?:\.[\w-]+)*"
    r"\.(?:[A-Za-z]{2,}(?![A-Za-z0-9-])|[^\W\d_A-Za-z]{2,}(?![\w-])|xn--[A-Za-z0-9-]+(?![\w-]))"
)
# YYMMDD-NNNNNNN with a dash: 13 bare digits are far more often an order or account number.
_RRN = re.compile(r"(?<![0-9A-Za-z-])(\d{6})-(\d{7})(?![0-9A-Za-z-])")
# 13-19 digits, optionally grouped by single spaces or dashes, never part of a longer number,
# a decimal, a version or a word.
_CARD = re.compile(r"(?<![0-9A-Za-z.,-])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z]|[.,]\d|[ -]?\d)")
# Issuer prefixes: Visa, Mastercard (51-55, 2221-2720), Amex, Diners, JCB, Discover, UnionPay.
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720|3[47]|30[0-5]|36|38|35(?:2[89]|[3-8]\d)"
    r"|6011|64[4-9]|65|62)"
)
_MIN_PHONE_DIGITS = 7


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int
    confident: bool = True  # False: an RRN without a valid check digit (issued since 2020-10)


@dataclass(frozen=True)
class Finding:
    path: str  # JSON path, e.g. $.input.messages[0].content
    kind: str
    confident: bool = True


def find_spans(text: str) -> list[Span]:
    """Non-overlapping PII spans in `text`, in text order."""
    candidates = [
        *(Span("EMAIL", m.start(), m.end()) for m in _EMAIL.finditer(text)),
        *_rrn_spans(text),
        *_card_spans(text),
        *_phone_spans(text),
    ]
    candidates.sort(key=lambda span: (KINDS.index(span.kind), span.start))
    chosen: list[Span] = []
    for span in candidates:
        if all(span.end <= other.start or span.start >= other.end for other in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda span: span.start)


def scan(value: Any, path: str = "$") -> list[Finding]:
    """Every PII finding in a JSON value (strings and object keys inside dicts and lists), by
    JSON path. Paths show keys masked, so a path never carries the PII it points at; a finding
    in a key itself has the path of that key followed by " (key)"."""
    return [
        Finding(string_path, span.kind, span.confident)
        for string_path, text in _strings(value, path)
        for span in find_spans(text)
    ]


def mask(value: Any) -> tuple[Any, Counter[str]]:
    """A copy of `value` with every PII span replaced by its tag ([EMAIL], [PHONE], ...), in
    strings and in object keys (a masked key that meets another key gets a "#2", "#3" ...)."""
    counts: Counter[str] = Counter()

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            masked, spans = _masked(item)
            counts.update(span.kind for span in spans)
            return masked
        if isinstance(item, dict):
            renamed: dict[str, Any] = {}
            for key, inner in item.items():
                renamed[_unique(walk(key), renamed)] = walk(inner)
            return renamed
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        return item

    return walk(value), counts


def _masked(text: str) -> tuple[str, list[Span]]:
    spans = find_spans(text)
    for span in reversed(spans):
        text = f"{text[: span.start]}[{span.kind}]{text[span.end :]}"
    return text, spans


def _unique(key: str, taken: dict[str, Any]) -> str:
    candidate, number = key, 1
    while candidate in taken:
        number += 1
        candidate = f"{key}#{number}"
    return candidate


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        pairs = []
        for key, inner in value.items():
            child = _child(path, _masked(key)[0] if isinstance(key, str) else key)
            if isinstance(key, str):
                pairs.append((f"{child} (key)", key))
            pairs.extend(_strings(inner, child))
        return pairs
    if isinstance(value, list):
        return [pair for i, inner in enumerate(value) for pair in _strings(inner, f"{path}[{i}]")]
    return []


def _child(path: str, key: Any) -> str:
    key = str(key)
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{path}[{key!r}]"


def _rrn_spans(text: str) -> list[Span]:
    from stdnum.kr import rrn

    spans = []
    for match in _RRN.finditer(text):
        number = match[1] + match[2]
        if number[6] not in "12345678":  # 9/0 mean born in the 1800s: nobody alive
            continue
        try:
            born = rrn.get_birth_date(number, allow_future=False)
        except ValueError:  # stdnum's ValidationError is a ValueError
            continue
        if born < date(1900, 1, 1):
            continue
        spans.append(Span("RRN", match.start(), match.end(), rrn.is_valid(number)))
    return spans


def _card_spans(text: str) -> list[Span]:
    from stdnum import luhn

    spans = []
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match[0])
        if _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
            spans.append(Span("CARD", match.start(), match.end()))
    return spans


def _phone_spans(text: str) -> list[Span]:
    if sum(ch.isdigit() for ch in text) < _MIN_PHONE_DIGITS:
        return []  # the matcher is slow; most strings hold no number at all
    import phonenumbers

    matcher = phonenumbers.PhoneNumberMatcher(text, "KR", leniency=phonenumbers.Leniency.VALID)
    return [Span("PHONE", match.start, match.end) for match in matcher]
