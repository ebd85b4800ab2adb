"""Hive-style path partitions (`year=2024/month=05/region=R/sigungu=S`) and silver area keys.

An area key names one region + sigungu as a single Dagster partition key. Dagster's multi-partition
keys use "|" as separator, reject ",", "[", "]", "..." and control characters, and IO managers turn
keys into paths, so none of those (nor "/") may appear. The key is `<region>~<sigungu>` with those
characters, "%", "~" and "." percent-escaped, which keeps Korean names readable in Dagit and
round-trips exactly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SNAPSHOT_SEGMENTS = ("year", "month", "region", "sigungu")
AREA_SEPARATOR = "~"
_ESCAPED_CHARACTERS = frozenset("%~/|,[].")
_ESCAPE_SEQUENCE = re.compile(r"%([0-9A-Fa-f]{2})")


class PartitionPathError(ValueError):
    """A path does not follow the `year=YYYY/month=MM/region=R/sigungu=S` layout."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path = path
        self.rule = rule


def nfc(text: str) -> str:
    """Text in composed Unicode (NFC). macOS writes Korean file names decomposed (NFD), which
    looks identical but compares different: every name that keys a snapshot or partition goes
    through here, so both spellings are one snapshot."""
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True, order=True)
class SnapshotKey:
    """One silver snapshot: the files of one month in one region/sigungu (names in NFC)."""

    year: int
    month: int
    region: str
    sigungu: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "region", nfc(self.region))
        object.__setattr__(self, "sigungu", nfc(self.sigungu))

    @property
    def month_key(self) -> str:
        """The Dagster monthly partition key, e.g. `2024-05-01`."""
        return f"{self.year:04d}-{self.month:02d}-01"

    @property
    def area_key(self) -> str:
        return area_key(self.region, self.sigungu)

    def path(self) -> str:
        return format_partition_path(self)


def parse_segments(path: str) -> dict[str, str]:
    """Every `name=value` segment of a `/`-separated path, in order of appearance."""
    segments: dict[str, str] = {}
    for part in nfc(path).replace("\\", "/").split("/"):
        name, sep, value = part.partition("=")
        if sep and name:
            if name in segments:
                raise PartitionPathError(path, f"segment {name}= appears twice")
            segments[name] = value
    return segments


def parse_snapshot(path: str) -> SnapshotKey:
    """The snapshot a file belongs to, from its key or path; errors name the broken rule.

    The four segments must appear together and in order (`year=/month=/region=/sigungu=`), with
    a 4-digit year and a 2-digit month, so every snapshot has exactly one folder.
    """
    segments = parse_segments(path)
    wanted = "/".join(f"{name}=..." for name in SNAPSHOT_SEGMENTS)
    missing = [name for name in SNAPSHOT_SEGMENTS if not segments.get(name)]
    if missing:
        names = ", ".join(f"{m}=" for m in missing)
        raise PartitionPathError(path, f"missing segment {names} (expected {wanted})")
    order = [name for name in segments if name in SNAPSHOT_SEGMENTS]
    parts = nfc(path).replace("\\", "/").split("/")
    first = parts.index(f"year={segments['year']}")
    together = parts[first : first + 4] == [f"{n}={segments[n]}" for n in SNAPSHOT_SEGMENTS]
    if order != list(SNAPSHOT_SEGMENTS) or not together:
        raise PartitionPathError(path, f"segments must be consecutive and in order: {wanted}")
    year, month = segments["year"], segments["month"]
    if not (len(year) == 4 and year.isascii() and year.isdigit()):
        raise PartitionPathError(path, f"year={year} is not a 4-digit year")
    if not (len(month) == 2 and month.isascii() and month.isdigit() and 1 <= int(month) <= 12):
        raise PartitionPathError(path, f"month={month} is not a 2-digit month 01-12")
    return SnapshotKey(int(year), int(month), segments["region"], segments["sigungu"])


def format_partition_path(snapshot: SnapshotKey) -> str:
    """`year=2024/month=05/region=R/sigungu=S` (no leading or trailing slash)."""
    for name, value in (("region", snapshot.region), ("sigungu", snapshot.sigungu)):
        if not value or "/" in value:
            raise PartitionPathError(repr(value), f"{name} must be non-empty and contain no '/'")
    return (
        f"year={snapshot.year:04d}/month={snapshot.month:02d}"
        f"/region={snapshot.region}/sigungu={snapshot.sigungu}"
    )


def _escape(value: str) -> str:
    return "".join(
        f"%{ord(ch):02X}" if ch in _ESCAPED_CHARACTERS or ord(ch) < 32 else ch for ch in value
    )


def _unescape(value: str) -> str:
    return _ESCAPE_SEQUENCE.sub(lambda m: chr(int(m.group(1), 16)), value)


def area_key(region: str, sigungu: str) -> str:
    """A partition key for one region + sigungu, free of "/" and "|"."""
    if not region or not sigungu:
        raise ValueError("region and sigungu must both be non-empty")
    return f"{_escape(nfc(region))}{AREA_SEPARATOR}{_escape(nfc(sigungu))}"


def parse_area_key(key: str) -> tuple[str, str]:
    """The (region, sigungu) an area key was made from."""
    region, sep, sigungu = key.partition(AREA_SEPARATOR)
    if not sep or not region or not sigungu or AREA_SEPARATOR in sigungu:
        raise ValueError(f"not an area key (expected <region>~<sigungu>): {key!r}")
    return nfc(_unescape(region)), nfc(_unescape(sigungu))
