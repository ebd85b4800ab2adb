"""Samples as stored lines: checked on the way in, parsed naming file and line on the way out."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from data_platform.training.errors import TrainingError

REQUIRED_FIELDS = ("input", "output")
# Set by the store on every stored line; a sample's own values for them are replaced.
STORE_FIELDS = ("id", "task", "created_at")


def new_id() -> str:
    return uuid.uuid4().hex


def check_samples(samples: Sequence[Any]) -> None:
    """Every sample is a JSON object with `input` and `output`; else name the first bad one."""
    if isinstance(samples, Mapping | str | bytes) or not isinstance(samples, Sequence):
        raise TrainingError("samples must be a list of JSON objects with 'input' and 'output'")
    if not samples:
        raise TrainingError("no samples to write: pass at least one")
    for number, sample in enumerate(samples, start=1):
        where = f"sample {number} of {len(samples)}"
        if not isinstance(sample, Mapping):
            raise TrainingError(f"{where} is a {type(sample).__name__}, not a JSON object")
        missing = [name for name in REQUIRED_FIELDS if name not in sample]
        if missing:
            raise TrainingError(
                f"{where} has no {' or '.join(repr(m) for m in missing)}; "
                "every sample needs 'input' and 'output'"
            )


def stored_record(
    sample: Mapping[str, Any],
    task: str,
    created_at: datetime,
    metadata: Mapping[str, Any] | None,
    sample_id: str | None = None,
) -> dict[str, Any]:
    """The line stored for `sample`: its fields plus id, task, created_at (UTC) and metadata."""
    merged = {**(sample.get("metadata") or {}), **(metadata or {})}
    return {
        "id": sample_id or new_id(),
        "task": task,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        **{key: value for key, value in sample.items() if key not in (*STORE_FIELDS, "metadata")},
        "metadata": merged,
    }


def encode_lines(records: Sequence[Mapping[str, Any]]) -> bytes:
    try:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"sample is not JSON-serializable ({exc}); use JSON types") from None


def numbered_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-blank line of a JSONL file."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            yield number, raw


def decode_line(raw: bytes) -> dict[str, Any]:
    """One JSONL line as a JSON object; ValueError saying why not."""
    record = json.loads(raw)  # UnicodeDecodeError and JSONDecodeError are ValueErrors
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    return record


def parse_lines(data: bytes, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line; a bad line raises naming file and line."""
    for number, raw in numbered_lines(data):
        try:
            yield number, decode_line(raw)
        except ValueError as exc:
            raise TrainingError(
                f"{where} line {number}: not a valid JSON object ({exc}); fix or remove that line"
            ) from None


def count_lines(data: bytes) -> int:
    return sum(1 for _ in numbered_lines(data))


def content_hash(record: Mapping[str, Any]) -> str:
    """Identity of a sample's content: input and output, key order ignored."""
    canonical = json.dumps(
        [record.get("input"), record.get("output")],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
