"""One day of one task as a dataset file in the store: deduplicated, validated, JSONL + Parquet.

Lines that are not JSON objects or lack `input`/`output` are left out (and reported); the rest
are deduplicated by a hash of input and output (first occurrence kept, in key and line order).
The files go to `.datasets/<task>/YYYY-MM-DD.{jsonl,parquet}` under the store's prefix ('.' can
never start a task name); a rerun replaces them whole.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from data_platform.training.backends import SampleStore
from data_platform.training.samples import content_hash, encode_lines
from data_platform.training.validate import PII_KINDS, Problem, checked_lines

DATASET_PREFIX = ".datasets"


@dataclass
class DayDataset:
    task: str
    day: date
    files: int = 0
    samples: int = 0  # in the dataset
    duplicates: int = 0
    left_out: list[Problem] = field(default_factory=list)  # unreadable or incomplete lines
    pii: list[Problem] = field(default_factory=list)
    duplicate_ids: list[Problem] = field(default_factory=list)
    locations: dict[str, str] = field(default_factory=dict)  # format -> path or URI


def dataset_key(task: str, day: date, extension: str) -> str:
    return f"{DATASET_PREFIX}/{task}/{day.isoformat()}.{extension}"


def build_day_dataset(backend: SampleStore, task: str, day: date) -> DayDataset:
    result = DayDataset(task, day)
    records: list[dict[str, Any]] = []
    seen_hashes: set[str] = set()
    seen_ids: dict[str, str] = {}
    for info in backend.sample_infos(task, day, day):
        result.files += 1
        data = backend.store.get(info.key)
        for checked in checked_lines(data, backend.location(info.key), seen_ids):
            record = checked.record
            if record is None or not checked.complete:
                result.left_out.extend(p for p in checked.problems if p.kind not in PII_KINDS)
                continue
            digest = content_hash(record)
            if digest in seen_hashes:
                result.duplicates += 1
                continue
            seen_hashes.add(digest)
            records.append(record)
            result.pii.extend(p for p in checked.problems if p.kind in PII_KINDS)
            result.duplicate_ids.extend(p for p in checked.problems if p.kind == "duplicate-id")
    result.samples = len(records)
    for extension, content in (("jsonl", encode_lines(records)), ("parquet", _parquet(records))):
        key = dataset_key(task, day, extension)
        backend.store.put(key, content, {"sample-count": str(len(records))})
        result.locations[extension] = backend.location(key)
    return result


def _parquet(records: list[dict[str, Any]]) -> bytes:
    """id, task, created_at (UTC timestamp), input/output/metadata as JSON text."""
    import polars as pl

    def as_json(name: str) -> list[str]:
        return [json.dumps(r.get(name), ensure_ascii=False) for r in records]

    frame = pl.DataFrame(
        {
            "id": [str(r.get("id", "")) for r in records],
            "task": [str(r.get("task", "")) for r in records],
            "created_at": [str(r.get("created_at", "")) for r in records],
            "input": as_json("input"),
            "output": as_json("output"),
            "metadata": as_json("metadata"),
        },
        schema={
            name: pl.String for name in ("id", "task", "created_at", "input", "output", "metadata")
        },
    ).with_columns(pl.col("created_at").str.to_datetime(time_zone="UTC", strict=False))
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()
