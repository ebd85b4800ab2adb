"""Export (dedupe, deterministic split, all-or-nothing files) and validate, on both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_platform.training import LocalStorageBackend, SampleStore, TrainingError
from data_platform.training.export import export_task, parse_split, split_of
from data_platform.training.validate import validate_task


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def fill(backend: SampleStore) -> None:
    for d in (1, 2, 3):
        samples = [{"input": f"질문 {n % 40}", "output": {"답": n % 40}} for n in range(d * 30)]
        created = datetime(2026, 2, d, 9, tzinfo=UTC)
        backend.write_training_samples("qa", samples, created_at=created)


def test_export_dedupes_by_input_and_output(backend: SampleStore, tmp_path: Path) -> None:
    fill(backend)
    out = tmp_path / "out" / "qa.jsonl"
    report = export_task(backend, "qa", out)
    assert report.read == 180 and len(read_jsonl(out)) == 180
    report = export_task(backend, "qa", out, dedupe=True)
    rows = read_jsonl(out)
    assert report.duplicates == 140 and len(rows) == 40
    assert len({(r["input"], json.dumps(r["output"])) for r in rows}) == 40
    # the first occurrence (oldest file) is kept
    assert {r["created_at"][:10] for r in rows} == {"2026-02-01", "2026-02-02"}
    one_day = export_task(backend, "qa", out, since="2026-02-02", until="2026-02-02")
    assert one_day.read == 60
    assert list(out.parent.iterdir()) == [out]  # no temp file left behind


def test_split_is_deterministic_by_sample_id(backend: SampleStore, tmp_path: Path) -> None:
    fill(backend)
    split = parse_split("train=0.8,val=0.1,test=0.1")
    first = export_task(backend, "qa", tmp_path / "a" / "qa.jsonl", split=split, seed=7)
    export_task(backend, "qa", tmp_path / "b" / "qa.jsonl", split=split, seed=7)
    assert [Path(p).name for p in first.written] == [
        "qa.train.jsonl",
        "qa.val.jsonl",
        "qa.test.jsonl",
    ]
    for name in ("train", "val", "test"):
        a, b = (read_jsonl(tmp_path / d / f"qa.{name}.jsonl") for d in "ab")
        assert a == b and all(split_of(r["id"], split, 7) == name for r in a)
    assert sum(first.written.values()) == 180
    assert 120 <= first.written[str(tmp_path / "a" / "qa.train.jsonl")] <= 165
    export_task(backend, "qa", tmp_path / "c" / "qa.jsonl", split=split, seed=8)
    ids = {d: {r["id"] for r in read_jsonl(tmp_path / d / "qa.val.jsonl")} for d in "ac"}
    assert ids["a"] != ids["c"]  # another seed, another split


@pytest.mark.parametrize(
    "text", ["train=0.9,val=0.2", "train=0.9", "train", "train=x,val=1", "a=0.5,a=0.5", "1=1.0"]
)
def test_bad_split_specs(text: str) -> None:
    with pytest.raises(TrainingError, match="split"):
        parse_split(text)


def test_export_of_a_broken_file_names_it_and_leaves_no_output(
    backend: SampleStore, tmp_path: Path
) -> None:
    fill(backend)
    key = "qa/2026/02/02/zz-broken.jsonl"
    backend.store.put(key, b'{"input": 1, "output": 2}\nnot json\n')
    out = tmp_path / "qa.jsonl"
    with pytest.raises(TrainingError, match=rf"{backend.location(key)} line 2"):
        export_task(backend, "qa", out, split=parse_split("train=0.5,val=0.5"))
    assert not list(tmp_path.glob("qa*")) and not list(tmp_path.glob(".qa*"))


def test_validate_reports_file_line_path_and_kind_never_the_value(backend: SampleStore) -> None:
    backend.write_training_sample("qa", {"input": "깨끗한 질문", "output": "답"})
    lines = [
        {"id": "a", "input": {"q": "전화 010-1234-5678", "010-2345-6789": "x"}, "output": "ok"},
        {"id": "b", "output": "no input"},
        {"id": "a", "input": "dup id", "output": "카드 4111-1111-1111-1111"},
    ]
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines) + "{oops\n"
    key = "qa/2026/02/09/imported.jsonl"
    backend.store.put(key, data.encode())
    report = validate_task(backend, "qa")
    where = backend.location(key)
    found = sorted((p.location, p.line, p.path, p.kind) for p in report.problems)
    assert found == [
        (where, 1, "$.input.q", "PHONE"),
        (where, 1, "$.input['[PHONE]'] (key)", "PHONE"),
        (where, 2, "$.input", "missing-input"),
        (where, 3, "$.id", "duplicate-id"),
        (where, 3, "$.output", "CARD"),
        (where, 4, "$", "bad-json"),
    ]
    assert report.files == 2 and report.samples == 5
    assert "010-" not in " ".join(str(p) for p in report.problems)
    assert "3 PII findings, 3 other problems" in report.summary()


def test_masked_samples_validate_clean(tmp_path: Path) -> None:
    backend = LocalStorageBackend(tmp_path)
    backend.write_training_sample(
        "qa", {"input": "메일 kim@example.com", "output": "010-1234-5678"}
    )
    assert validate_task(backend, "qa").problems == []
