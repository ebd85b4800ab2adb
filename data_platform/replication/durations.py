"""Durations as written in the spec and on the command line: `90s`, `30m`, `1h`, `2d`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `1h`, `2d`; ValueError says what is wrong."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h or 2d")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    # An age must leave a date after year 1 (`now - age`); beyond that timedelta overflows.
    longest = datetime.now(UTC) - datetime.min.replace(tzinfo=UTC)
    if seconds > longest.total_seconds():
        raise ValueError(f"{text!r} is too long (at most {longest.days}d)")
    return timedelta(seconds=seconds)
