"""Where samples live: `<task>/YYYY/MM/DD/<id>.jsonl` under the store's prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from data_platform.training.errors import TrainingError

TASK_PATTERN = re.compile(r"^[a-z0-9_-]+$")
_SAMPLE_KEY = re.compile(
    r"^(?P<task>[a-z0-9_-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<id>[A-Za-z0-9_-]+)\.jsonl$"
)
# Kept in the store next to the tasks; '.' can never start a task name, so it is never a sample.
STATS_CACHE_KEY = ".stats-cache.json"


def check_task(task: str) -> str:
    if not isinstance(task, str) or not TASK_PATTERN.match(task):
        raise TrainingError(
            f"invalid task name {task!r}: use lowercase letters, digits, '_' and '-' only"
        )
    return task


@dataclass(frozen=True)
class SampleKey:
    task: str
    day: date
    file_id: str

    def key(self) -> str:
        return f"{self.task}/{self.day:%Y/%m/%d}/{self.file_id}.jsonl"


def sample_key(task: str, created_at: datetime, file_id: str) -> str:
    return SampleKey(check_task(task), created_at.date(), file_id).key()


def parse_sample_key(key: str) -> SampleKey | None:
    """The parts of a sample file's key, or None for anything else under the prefix."""
    match = _SAMPLE_KEY.match(key)
    if match is None:
        return None
    try:
        day = date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None
    return SampleKey(match["task"], day, match["id"])


def parse_day(value: str | date | None, option: str = "date") -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TrainingError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def parse_range(
    since: str | date | None, until: str | date | None
) -> tuple[date | None, date | None]:
    """--since and --until as days; a range that ends before it starts is an error, not an empty
    result (an export would write an empty file and look like success)."""
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    if first is not None and last is not None and first > last:
        raise TrainingError(f"--since {first} is after --until {last}: swap them")
    return first, last


def in_range(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)
