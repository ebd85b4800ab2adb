"""Scan stored samples for PII, missing fields, unreadable lines and duplicate ids.

Problems name the file, line, JSON path and kind; never the offending value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from data_platform.training import pii
from data_platform.training.backends import SampleStore
from data_platform.training.samples import REQUIRED_FIELDS, count_lines, decode_line, numbered_lines

PII_KINDS = frozenset(pii.KINDS)


@dataclass(frozen=True)
class Problem:
    location: str  # file path or URI
    line: int
    path: str  # JSON path, "$" for the whole line
    kind: (
        str  # EMAIL | PHONE | RRN | CARD | missing-input | missing-output | bad-json | duplicate-id
    )

    def __str__(self) -> str:
        return f"{self.location}:{self.line}: {self.kind} at {self.path}"


@dataclass
class ValidationReport:
    files: int = 0
    samples: int = 0
    problems: list[Problem] = field(default_factory=list)

    def count(self, kinds: frozenset[str] | set[str]) -> int:
        return sum(1 for problem in self.problems if problem.kind in kinds)

    def summary(self) -> str:
        pii_found = self.count(PII_KINDS)
        other = len(self.problems) - pii_found
        return (
            f"validated {self.samples} samples in {self.files} files: "
            f"{pii_found} PII findings, {other} other problems"
        )


@dataclass
class CheckedLine:
    line: int
    record: dict[str, Any] | None  # None: not a JSON object
    problems: list[Problem]

    @property
    def complete(self) -> bool:
        """Readable and has every required field (PII or a repeated id aside)."""
        return self.record is not None and not any(
            p.kind.startswith("missing-") for p in self.problems
        )


def checked_lines(data: bytes, location: str, seen_ids: dict[str, str]) -> Iterator[CheckedLine]:
    """Each line with its problems; `seen_ids` (id -> first location) spans files."""
    for number, raw in numbered_lines(data):
        try:
            record = decode_line(raw)
        except ValueError:
            yield CheckedLine(number, None, [Problem(location, number, "$", "bad-json")])
            continue
        problems = [
            Problem(location, number, f"$.{name}", f"missing-{name}")
            for name in REQUIRED_FIELDS
            if name not in record
        ]
        sample_id = str(record.get("id", ""))
        if sample_id in seen_ids:
            problems.append(Problem(location, number, "$.id", "duplicate-id"))
        seen_ids.setdefault(sample_id, f"{location}:{number}")
        problems.extend(
            Problem(location, number, finding.path, finding.kind) for finding in pii.scan(record)
        )
        yield CheckedLine(number, record, problems)


def validate_task(
    backend: SampleStore,
    task: str,
    since: date | str | None = None,
    until: date | str | None = None,
    on_file: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    report = ValidationReport()
    seen_ids: dict[str, str] = {}
    infos = backend.sample_infos(task, since, until)
    for done, info in enumerate(infos, start=1):
        data = backend.store.get(info.key)
        report.files += 1
        report.samples += count_lines(data)
        for checked in checked_lines(data, backend.location(info.key), seen_ids):
            report.problems.extend(checked.problems)
        if on_file is not None:
            on_file(done, len(infos))
    return report
