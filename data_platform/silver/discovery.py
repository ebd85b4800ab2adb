"""Find raw partitions whose files are new, changed or gone, with bounded work per sensor tick.

Raw keys look like `<dataset>/year=YYYY/month=MM/region=R/sigungu=S/<file>`. A partition's keys
share one prefix, so they are contiguous in S3's sorted listing; a partition's state is the
fingerprint of its sorted (key, etag, size) list. The cursor keeps one short fingerprint per known
partition, so a changed etag, an added file in an old partition or a deleted file all show up as a
different fingerprint when the partition is listed again, and a partition missing from a listed
range has lost all its files.

Why not list only after the last key seen: new files for an old partition, and rewritten files
(same key, new etag), sort *before* that key and would never be found. Why not list everything
every tick: 100,000 keys are 100 LIST requests per tick. So each tick lists two bounded ranges:

* the *frontier*: per dataset, everything from the newest known month on (`recent_months` back).
  New months, new areas and rewrites in the current month (the normal flow) are found in the
  next tick, for the price of about one month's keys.
* the *sweep*: a window of `sweep_keys` keys that resumes where the last tick stopped and wraps
  around, so late changes anywhere (old months, deletions) are found within one full sweep.

Each range stops at a partition boundary once its key budget or the tick's change budget is spent,
and the next tick resumes there: an initial load of 100,000 keys takes several ticks, never one
huge one. Deleted objects are simply absent from the listing; there is no stored object to lose.
Run keys hash the new fingerprint and the previous one, so the same files never load twice, while
a partition that changes A -> B -> A is loaded again. Where the cursor is kept between ticks (and
why not all of it in Dagster's cursor): see `discovery_state`.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from data_platform.core.partitions import (
    PartitionPathError,
    SnapshotKey,
    parse_segments,
    parse_snapshot,
)
from data_platform.silver.discovery_state import DiscoveryCursor, Resume
from data_platform.silver.sources import file_format_of

if TYPE_CHECKING:
    from data_platform.core.objectstore import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

__all__ = [
    "DiscoveryCursor",
    "DiscoveryLimits",
    "DiscoveryResult",
    "LayoutProblem",
    "PartitionChange",
    "RawPartition",
    "discover",
    "fingerprint",
    "list_partition_files",
    "parse_raw_key",
]


@dataclass(frozen=True)
class LayoutProblem:
    """A key that breaks the raw layout, and the rule it breaks."""

    key: str
    rule: str


@dataclass(frozen=True)
class RawPartition:
    """The data files of one dataset snapshot, sorted by key."""

    dataset: str
    snapshot: SnapshotKey
    files: tuple[ObjectInfo, ...]

    @property
    def path(self) -> str:
        """`year=YYYY/month=MM/region=R/sigungu=S` inside the dataset."""
        return self.snapshot.path()

    @property
    def prefix(self) -> str:
        return partition_prefix(self.dataset, self.path)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.files)


@dataclass(frozen=True)
class PartitionChange:
    """A partition whose files differ from the cursor's fingerprint (`previous` None: new)."""

    partition: RawPartition
    previous: str | None

    @property
    def run_key(self) -> str:
        snapshot = self.partition.snapshot
        base = f"silver:{self.partition.dataset}:{snapshot.month_key}:{snapshot.area_key}"
        return f"{base}:{self.partition.fingerprint}:after:{self.previous or 'none'}"


@dataclass(frozen=True)
class DiscoveryLimits:
    """Work per tick: keys listed in the frontier and in the sweep, partitions requested."""

    frontier_keys: int = 10_000
    sweep_keys: int = 1_000
    max_changes: int = 100
    recent_months: int = 1

    def __post_init__(self) -> None:
        if min(self.frontier_keys, self.sweep_keys, self.max_changes, self.recent_months) < 1:
            raise ValueError("discovery limits must all be at least 1")


@dataclass
class DiscoveryResult:
    changes: list[PartitionChange]
    removed: list[tuple[str, str]]  # (dataset, partition path) whose files are all gone
    problems: list[LayoutProblem]  # each key once per tick
    new_problems: list[LayoutProblem]  # not reported by an earlier tick (see `reported`)
    keys_listed: int
    cursor: DiscoveryCursor


def partition_prefix(dataset: str, path: str) -> str:
    return f"{dataset}/{path}/"


def fingerprint(files: Sequence[ObjectInfo]) -> str:
    """16 hex digits over the sorted (key, etag, size) list."""
    digest = hashlib.blake2b(digest_size=8)
    for item in sorted(files, key=lambda f: f.key):
        digest.update(f"{item.key}\t{item.etag}\t{item.size}\n".encode())
    return digest.hexdigest()


def parse_raw_key(dataset: str, key: str) -> SnapshotKey | LayoutProblem | None:
    """The snapshot a data file belongs to; a LayoutProblem for a key breaking the layout;
    None for hidden or marker files (`.x`, `_SUCCESS`), which are ignored."""
    parts = key.split("/")
    file_name = parts[-1]
    if parts[0] != dataset:
        return LayoutProblem(key, f"not under the dataset folder {dataset}/")
    if len(parts) != 6 or not file_name:
        return LayoutProblem(
            key, f"expected {dataset}/year=YYYY/month=MM/region=R/sigungu=S/<file> (6 parts)"
        )
    if file_name.startswith((".", "_")):
        return None
    try:
        snapshot = parse_snapshot("/".join(parts[1:5]))
    except PartitionPathError as exc:
        return LayoutProblem(key, exc.rule)
    if file_format_of(file_name) is None:
        return LayoutProblem(key, "not a .csv, .csv.gz or .parquet file")
    return snapshot


def list_partition_files(store: ObjectStore, dataset: str, snapshot: SnapshotKey) -> RawPartition:
    """The partition as it is in the store now (the files a run loads): keys under its folder
    spelled in composed (NFC) or decomposed (NFD, as macOS uploads) Unicode."""
    path = snapshot.path()
    spellings = dict.fromkeys([path, unicodedata.normalize("NFD", path)])
    files = [
        info
        for spelling in spellings
        for info in store.list(partition_prefix(dataset, spelling))
        if parse_raw_key(dataset, info.key) == snapshot
    ]
    return RawPartition(dataset, snapshot, tuple(sorted(files, key=lambda f: f.key)))


def discover(
    store: ObjectStore,
    datasets: Sequence[str],
    cursor: DiscoveryCursor,
    limits: DiscoveryLimits = DiscoveryLimits(),
    month_range: tuple[str, str] | None = None,
) -> DiscoveryResult:
    """One tick: the frontier of every dataset, then the sweep window. `month_range` is the
    (first, last) month key (`YYYY-MM-01`) a partition may have; others are layout problems."""
    for dataset in datasets:
        if not dataset or "/" in dataset:
            raise ValueError(f"dataset {dataset!r} must be a non-empty name without '/'")
    tick = _Tick(store, cursor, limits, month_range)
    for dataset in sorted(set(datasets)):
        tick.frontier(dataset)
    tick.sweep(sorted(set(datasets)))
    for stale in set(tick.cursor.fingerprints) - set(datasets):
        del tick.cursor.fingerprints[stale]
    problems = list({p.key: p for p in tick.problems}.values())
    fresh = tick.cursor.remember_reported([f"{p.key}\t{p.rule}" for p in problems])
    new_problems = [p for p in problems if f"{p.key}\t{p.rule}" in fresh]
    return DiscoveryResult(
        tick.changes, tick.removed, problems, new_problems, tick.keys_listed, tick.cursor
    )


def _after(prefix: str) -> str:
    """The smallest key after every key under `prefix` ("/" + 1 == "0"); used as StartAfter."""
    return prefix[:-1] + "0"


def _year_prefix(dataset: str, key: str) -> str:
    """`<dataset>/year=YYYY/` of a key or StartAfter inside a year folder."""
    return f"{dataset}/year={parse_segments(key)['year']}/"


def _newest_known(known: dict[str, str]) -> SnapshotKey:
    """The newest partition of a dataset's fingerprints (keyed by `year=/month=/...` paths)."""
    return max(parse_snapshot(path) for path in known)


class _Tick:
    def __init__(
        self,
        store: ObjectStore,
        cursor: DiscoveryCursor,
        limits: DiscoveryLimits,
        month_range: tuple[str, str] | None,
    ) -> None:
        self.store = store
        self.cursor = cursor.copy()
        self.limits = limits
        self.month_range = month_range
        self.changes: list[PartitionChange] = []
        self.removed: list[tuple[str, str]] = []
        self.problems: list[LayoutProblem] = []
        self.keys_listed = 0

    @property
    def changes_left(self) -> int:
        return self.limits.max_changes - len(self.changes)

    def frontier(self, dataset: str) -> None:
        """From the recent window (or the last resume point) through the year after the
        newest known one, one year folder per listing; everything when nothing is known yet."""
        budget = self.limits.frontier_keys
        state = self.cursor.frontier_resume.pop(dataset, None) or self._window(dataset)
        while state is not None:
            if budget <= 0 or self.changes_left <= 0:
                self.cursor.frontier_resume[dataset] = state
                return
            prefix, after = state
            listed_before = self.keys_listed
            stop = self.scan(dataset, prefix, after, budget)
            budget -= self.keys_listed - listed_before
            if stop is not None:
                state = (prefix, stop)
            elif prefix == f"{dataset}/":
                state = None
            else:
                year = int(parse_segments(prefix)["year"])
                known = self.cursor.fingerprints.get(dataset)
                newest_year = _newest_known(known).year if known else 0
                next_year = f"{dataset}/year={year + 1:04d}/"
                state = (next_year, None) if year <= newest_year else None

    def sweep(self, datasets: list[str]) -> None:
        """`sweep_keys` keys onwards from the last tick, wrapping around all datasets. Inside a
        year the listing is narrowed to its folder; the next year is found by one listing of
        the dataset after it (a narrow prefix is much cheaper on some S3 servers)."""
        budget, finished = self.limits.sweep_keys, 0
        while budget > 0 and self.changes_left > 0 and finished < len(datasets):
            dataset = self.cursor.sweep_dataset
            if dataset not in datasets or self.cursor.sweep_resume is None:
                dataset = dataset if dataset in datasets else datasets[0]
                self.cursor.sweep_resume = (f"{dataset}/", None)
            prefix, after = self.cursor.sweep_resume
            listed_before = self.keys_listed
            stop = self.scan(dataset, prefix, after, budget)
            budget -= self.keys_listed - listed_before
            self.cursor.sweep_dataset = dataset
            if stop is not None:
                self.cursor.sweep_resume = (_year_prefix(dataset, stop), stop)
            elif prefix != f"{dataset}/":
                self.cursor.sweep_resume = (f"{dataset}/", _after(prefix))
            else:
                finished += 1
                following = datasets.index(dataset) + 1
                self.cursor.sweeps_completed += following == len(datasets)
                self.cursor.sweep_dataset = datasets[following % len(datasets)]
                self.cursor.sweep_resume = None

    def _window(self, dataset: str) -> Resume:
        known = self.cursor.fingerprints.get(dataset)
        if not known:
            return (f"{dataset}/", None)
        newest = _newest_known(known)
        index = newest.year * 12 + newest.month - 1 - (self.limits.recent_months - 1)
        year, month = index // 12, index % 12 + 1
        return (f"{dataset}/year={year:04d}/", f"{dataset}/year={year:04d}/month={month:02d}")

    def scan(self, dataset: str, prefix: str, after: str | None, key_budget: int) -> str | None:
        """Compare every complete partition listed under `prefix` after `after`; returns the
        StartAfter to resume from, or None when the listing reached its end."""
        seen: set[str] = set()
        stop = last = None
        for partition in self._partitions(dataset, prefix, after, key_budget):
            if partition is not None:
                seen.add(partition.path)
                last = partition.prefix
                self._compare(partition)
            if last and (partition is None or self.changes_left <= 0):
                stop = _after(last)
                break
        self._forget_missing(dataset, prefix, after, stop, seen)
        return stop

    def _partitions(
        self, dataset: str, prefix: str, after: str | None, key_budget: int
    ) -> Iterator[RawPartition | None]:
        """Each complete partition in listing order, then None if the key budget ran out. A
        partition is complete when a key of the next one (or the end of the listing) is seen;
        the budget is only checked after one partition completed, so a partition larger than
        the budget still makes progress."""
        current: SnapshotKey | None = None
        files: list[ObjectInfo] = []
        completed = 0
        for listed, info in enumerate(self.store.list(prefix, after), start=1):
            self.keys_listed += 1
            parsed = parse_raw_key(dataset, info.key)
            if isinstance(parsed, SnapshotKey):
                parsed = self._check_month(info.key, parsed)
            if isinstance(parsed, LayoutProblem):
                self.problems.append(parsed)
            elif parsed is not None:
                if parsed != current:
                    if current is not None:
                        completed += 1
                        yield RawPartition(dataset, current, tuple(files))
                    current, files = parsed, []
                files.append(info)
            if listed >= key_budget and completed:
                yield None
                return
        if current is not None:
            yield RawPartition(dataset, current, tuple(files))

    def _check_month(self, key: str, snapshot: SnapshotKey) -> SnapshotKey | LayoutProblem:
        if self.month_range is None:
            return snapshot
        first, last = self.month_range
        if not first <= snapshot.month_key <= last:
            return LayoutProblem(
                key, f"month {snapshot.month_key[:7]} is outside {first[:7]}..{last[:7]}"
            )
        return snapshot

    def _compare(self, partition: RawPartition) -> None:
        known = self.cursor.fingerprints.setdefault(partition.dataset, {})
        previous = known.get(partition.path)
        if previous != partition.fingerprint:
            self.changes.append(PartitionChange(partition, previous))
            known[partition.path] = partition.fingerprint

    def _forget_missing(
        self, dataset: str, prefix: str, after: str | None, stop: str | None, seen: set[str]
    ) -> None:
        """Known partitions inside the listed range that were not listed have lost every file."""
        known = self.cursor.fingerprints.get(dataset, {})
        for path in list(known):
            full = partition_prefix(dataset, path)
            inside = full.startswith(prefix) and (after is None or full > after)
            if inside and (stop is None or full < stop) and path not in seen:
                del known[path]
                self.removed.append((dataset, path))
