"""Hive-style path partitions (`year=2024/month=05/region=R/sigungu=S`) and silver area keys.

An area key names one region + sigungu as a single Dagster partition key. Dagster's multi-partition
keys use "|" as separator and IO managers turn keys into paths, so neither "/" nor "|" may appear;
the key is `<region>~<sigungu>` with "%", "~", "/" and "|" percent-escaped, which keeps Korean names
readable in Dagit and round-trips exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SNAPSHOT_SEGMENTS = ("year", "month", "region", "sigungu")
AREA_SEPARATOR = "~"
_ESCAPED = {"%": "%25", "~": "%7E", "/": "%2F", "|": "%7C"}
_UNESCAPE = re.compile("|".join(re.escape(v) for v in _ESCAPED.values()), re.IGNORECASE)
_UNESCAPED = {v.upper(): k for k, v in _ESCAPED.items()}


class PartitionPathError(ValueError):
    """A path does not follow the `year=YYYY/month=MM/region=R/sigungu=S` layout."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path = path
        self.rule = rule


@dataclass(frozen=True, order=True)
class SnapshotKey:
    """One silver snapshot: the files of one month in one region/sigungu."""

    year: int
    month: int
    region: str
    sigungu: str

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
    for part in path.replace("\\", "/").split("/"):
        name, sep, value = part.partition("=")
        if sep and name:
            if name in segments:
                raise PartitionPathError(path, f"segment {name}= appears twice")
            segments[name] = value
    return segments


def parse_snapshot(path: str) -> SnapshotKey:
    """The snapshot a file belongs to, from its key or path; errors name the broken rule."""
    segments = parse_segments(path)
    missing = [name for name in SNAPSHOT_SEGMENTS if not segments.get(name)]
    if missing:
        wanted = "/".join(f"{name}=..." for name in SNAPSHOT_SEGMENTS)
        raise PartitionPathError(
            path, f"missing segment {', '.join(f'{m}=' for m in missing)} (expected {wanted})"
        )
    year, month = segments["year"], segments["month"]
    if not (len(year) == 4 and year.isascii() and year.isdigit()):
        raise PartitionPathError(path, f"year={year} is not a 4-digit year")
    if not (month.isascii() and month.isdigit() and len(month) <= 2 and 1 <= int(month) <= 12):
        raise PartitionPathError(path, f"month={month} is not a month 01-12")
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
    return "".join(_ESCAPED.get(ch, ch) for ch in value)


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(0).upper()], value)


def area_key(region: str, sigungu: str) -> str:
    """A partition key for one region + sigungu, free of "/" and "|"."""
    if not region or not sigungu:
        raise ValueError("region and sigungu must both be non-empty")
    return f"{_escape(region)}{AREA_SEPARATOR}{_escape(sigungu)}"


def parse_area_key(key: str) -> tuple[str, str]:
    """The (region, sigungu) an area key was made from."""
    region, sep, sigungu = key.partition(AREA_SEPARATOR)
    if not sep or not region or not sigungu or AREA_SEPARATOR in sigungu:
        raise ValueError(f"not an area key (expected <region>~<sigungu>): {key!r}")
    return _unescape(region), _unescape(sigungu)
