"""Export a task's samples to JSONL: optional dedupe by content, deterministic split by id."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from data_platform.core.files import atomic_file, regular_file_mode
from data_platform.training.backends import SampleStore
from data_platform.training.errors import TrainingError
from data_platform.training.layout import parse_range
from data_platform.training.samples import content_hash, parse_lines

WRITE_BATCH = 1000  # records per write: one syscall per batch, memory bounded


@dataclass
class ExportReport:
    read: int = 0
    duplicates: int = 0
    written: dict[str, int] = field(default_factory=dict)  # output path -> samples

    def summary(self) -> str:
        parts = ", ".join(f"{Path(p).name} {n}" for p, n in self.written.items())
        return f"read {self.read} samples, dropped {self.duplicates} duplicates, wrote {parts}"


def parse_split(text: str) -> dict[str, float]:
    """`train=0.9,val=0.1` -> {"train": 0.9, "val": 0.1}; fractions must sum to 1."""
    split: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not name.isidentifier() or not 0 <= fraction <= 1 or name in split:
            raise TrainingError(
                f"bad split {text!r}: use name=fraction pairs like train=0.9,val=0.1"
            )
        split[name] = fraction
    if abs(sum(split.values()) - 1) > 1e-9:
        raise TrainingError(
            f"split {text!r} sums to {sum(split.values()):g}; fractions must sum to 1"
        )
    return split


def split_of(sample_id: str, split: dict[str, float], seed: int) -> str:
    """The split a sample belongs to: a hash of seed and id, so reruns and reorderings agree."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for name, fraction in split.items():
        total += fraction
        if position < total:
            return name
    return next(reversed(split))


def iter_records(
    backend: SampleStore,
    task: str,
    since: date | str | None,
    until: date | str | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every stored sample of `task` in the day range, in key order then line order."""
    infos = backend.sample_infos(task, since, until)
    for done, info in enumerate(infos, start=1):
        data = backend.store.get(info.key)
        for _, record in parse_lines(data, backend.location(info.key)):
            yield record
        if on_progress is not None:
            on_progress(done, len(infos))


def split_paths(out: Path, split: dict[str, float]) -> dict[str, Path]:
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return {name: out.with_name(f"{stem}.{name}.jsonl") for name in split}


def export_task(
    backend: SampleStore,
    task: str,
    out: Path,
    *,
    since: date | str | None = None,
    until: date | str | None = None,
    dedupe: bool = False,
    split: dict[str, float] | None = None,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write the samples to `out` (or one file per split next to it); all files or none appear."""
    parse_range(since, until)  # a bad range fails before any folder or file is made
    out = Path(out)
    targets = split_paths(out, split) if split else {"": out}
    report = ExportReport()
    seen: set[str] = set()
    out.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        files = {
            name: stack.enter_context(atomic_file(path, mode=regular_file_mode()))
            for name, path in targets.items()
        }
        counts = dict.fromkeys(targets, 0)
        pending: dict[str, list[str]] = {name: [] for name in targets}
        for record in iter_records(backend, task, since, until, on_progress):
            report.read += 1
            if dedupe:
                digest = content_hash(record)
                if digest in seen:
                    report.duplicates += 1
                    continue
                seen.add(digest)
            name = split_of(str(record.get("id", "")), split, seed) if split else ""
            pending[name].append(json.dumps(record, ensure_ascii=False) + "\n")
            counts[name] += 1
            if len(pending[name]) >= WRITE_BATCH:
                files[name].write("".join(pending[name]).encode())
                pending[name].clear()
        # Renamed into place only once every record is written: an error leaves no file.
        for name, file in files.items():
            file.write("".join(pending[name]).encode())
            file.commit()
            report.written[str(targets[name])] = counts[name]
    return report
