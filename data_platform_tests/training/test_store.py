"""The seed's interface on a local folder and on the S3 server: round trip, layout, no overwrite,
day ranges, stats against a brute-force count, bad input."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_platform.core.objectstore import PreconditionFailed
from data_platform.training import (
    LocalStorageBackend,
    S3StorageBackend,
    SampleStore,
    TrainingError,
    backend_from_env,
)
from data_platform_tests.conftest import make_s3_client

KOREAN = {
    "input": {"text": "서울특별시 강남구 역삼동 아파트 매매 계약서"},
    "output": {"가격": "12억 3천만원"},
}
ID = r"[0-9a-f]{32}"


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(hour=12, tzinfo=UTC)


def test_round_trip_with_korean_text(backend: SampleStore) -> None:
    location = backend.write_training_sample(
        "pdf_extraction", KOREAN, metadata={"source": "테스트"}
    )
    read = backend.read_sample(location)
    assert read["count"] == 1
    [sample] = read["samples"]
    assert sample["input"] == KOREAN["input"] and sample["output"] == KOREAN["output"]
    assert sample["task"] == "pdf_extraction" and sample["metadata"] == {"source": "테스트"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", sample["created_at"])
    assert location.endswith(f"/{sample['id']}.jsonl")  # one sample: the file is named by its id
    assert read["metadata"]["sample-count"] == "1"

    many = [{"input": f"질문 {i}", "output": f"답 {i}"} for i in range(50)]
    read = backend.read_sample(backend.write_training_samples("qa", many))
    assert read["count"] == 50
    assert [s["input"] for s in read["samples"]] == [m["input"] for m in many]
    assert len({s["id"] for s in read["samples"]}) == 50


def test_layout_and_locations(backend: SampleStore, tmp_path: Path) -> None:
    location = backend.write_training_sample("pdf_extraction", KOREAN, created_at=day("2026-02-09"))
    if isinstance(backend, S3StorageBackend):
        pattern = rf"s3://{backend.bucket_name}/training/pdf_extraction/2026/02/09/{ID}\.jsonl"
        raw_key = location.removeprefix(f"s3://{backend.bucket_name}/")
        s3_client = make_s3_client(backend.store.connection.endpoint_url)
        assert s3_client.head_object(Bucket=backend.bucket_name, Key=raw_key)
    else:
        pattern = rf"{tmp_path}/training/pdf_extraction/2026/02/09/{ID}\.jsonl"
        assert Path(location).is_file()
    assert re.fullmatch(pattern, location)
    assert backend.list_samples("pdf_extraction") == [location]
    key = backend.key_of(location)
    assert backend.read_sample(key) == backend.read_sample(location)


def test_never_overwrites_a_second_writer_of_the_same_key_fails(backend: SampleStore) -> None:
    key = "race/2026/02/09/same.jsonl"
    results: list[str] = []

    def write(text: str) -> None:
        try:
            backend.store.put_if_absent(key, f'{{"input": "{text}", "output": 1}}\n'.encode())
            results.append(text)
        except PreconditionFailed:
            results.append("lost")

    threads = [threading.Thread(target=write, args=(f"writer {i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r != "lost"]
    assert len(winners) == 1 and results.count("lost") == 3
    assert backend.read_sample(key)["samples"][0]["input"] == winners[0]


def test_list_by_day_folder_inclusive(backend: SampleStore) -> None:
    days = ["2026-01-31", "2026-02-01", "2026-02-09", "2026-02-10", "2026-03-01"]
    written = {d: backend.write_training_sample("ocr", KOREAN, created_at=day(d)) for d in days}
    backend.write_training_sample("other", KOREAN, created_at=day("2026-02-05"))
    assert backend.list_samples("ocr") == [written[d] for d in days]
    got = backend.list_samples("ocr", since="2026-02-01", until="2026-02-10")
    assert got == [written[d] for d in days[1:4]]
    assert backend.list_samples("ocr", since="2026-02-10") == [written[d] for d in days[3:]]
    assert backend.list_samples("ocr", until="2026-01-31") == [written["2026-01-31"]]
    assert backend.list_samples("nothing") == []


def test_stats_equal_a_brute_force_count(backend: SampleStore) -> None:
    plan = {"ocr": [1, 3, 7], "qa": [2, 5]}
    for task, sizes in plan.items():
        for i, size in enumerate(sizes):
            samples = [{"input": f"{task} {n}", "output": n} for n in range(size)]
            backend.write_training_samples(task, samples, created_at=day(f"2026-02-0{i + 1}"))
    # a stray object and the cache itself are not samples
    backend.store.put("ocr/notes.txt", b"not a sample\n")

    stats = backend.get_dataset_stats()
    brute: dict[str, dict[str, int]] = {}
    for task in plan:
        for location in backend.list_samples(task):
            entry = brute.setdefault(task, {"files": 0, "samples": 0, "bytes": 0})
            entry["files"] += 1
            entry["samples"] += backend.read_sample(location)["count"]
            entry["bytes"] += backend.store.head(backend.key_of(location)).size
    for task, counted in brute.items():
        assert {k: stats["tasks"][task][k] for k in counted} == counted
    assert stats["samples"] == sum(sum(s) for s in plan.values()) == 18
    assert stats["tasks"]["ocr"]["first_day"] == "2026-02-01"
    assert stats["tasks"]["ocr"]["last_day"] == "2026-02-03"
    assert backend.get_dataset_stats() == stats  # from the cache now
    assert backend.get_dataset_stats("qa")["tasks"].keys() == {"qa"}


def test_stats_count_files_written_by_other_tools_and_follow_changes(backend: SampleStore) -> None:
    backend.store.put("legacy/2025/12/31/old.jsonl", b'{"input": 1, "output": 2}\n' * 4)
    assert backend.get_dataset_stats()["samples"] == 4
    backend.store.put("legacy/2025/12/31/old.jsonl", b'{"input": 1, "output": 2}\n' * 6)
    assert backend.get_dataset_stats()["samples"] == 6  # new etag: counted again
    backend.store.delete("legacy/2025/12/31/old.jsonl")
    assert backend.get_dataset_stats() == {"files": 0, "samples": 0, "bytes": 0, "tasks": {}}


@pytest.mark.parametrize("task", ["PDF", "pdf extraction", "../etc", "", "a/b", "작업"])
def test_bad_task_names_are_value_errors(backend: SampleStore, task: str) -> None:
    with pytest.raises(ValueError, match="invalid task name"):
        backend.write_training_sample(task, KOREAN)
    with pytest.raises(TrainingError, match="invalid task name"):
        backend.list_samples(task)


def test_a_sample_without_input_is_refused_and_nothing_is_written(backend: SampleStore) -> None:
    samples = [KOREAN, {"output": "x"}]
    with pytest.raises(TrainingError, match=r"sample 2 of 2 has no 'input'"):
        backend.write_training_samples("qa", samples)
    with pytest.raises(TrainingError, match="not a JSON object"):
        backend.write_training_samples("qa", ["text"])
    assert backend.list_samples("qa") == []


def test_an_unreadable_line_names_file_and_line(backend: SampleStore) -> None:
    key = "qa/2026/02/09/broken.jsonl"
    backend.store.put(key, b'{"input": 1, "output": 2}\n\n{"input": 3, "output"\n')
    with pytest.raises(TrainingError) as caught:
        backend.read_sample(key)
    message = str(caught.value)
    assert f"{backend.location(key)} line 3: not a valid JSON object" in message
    assert "\n" not in message


def test_collection_switched_off_writes_nothing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "local")
    monkeypatch.setenv("TRAINING_LOCAL_DIR", str(tmp_path / "samples"))
    monkeypatch.setenv("ENABLE_TRAINING_COLLECTION", "false")
    backend = backend_from_env()
    assert isinstance(backend, LocalStorageBackend)
    assert backend.write_training_sample("qa", KOREAN) == ""
    assert not (tmp_path / "samples").exists()
    monkeypatch.setenv("ENABLE_TRAINING_COLLECTION", "true")
    monkeypatch.setenv("TRAINING_PII_STRICT", "true")
    strict = backend_from_env()
    assert strict.strict and strict.write_training_sample("qa", KOREAN)


def test_backend_from_env_s3(monkeypatch, s3_endpoint: str, bucket: str, aws_env) -> None:
    monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.delenv("AWS_S3_BUCKET", raising=False)
    with pytest.raises(TrainingError, match="AWS_S3_BUCKET"):
        backend_from_env()
    monkeypatch.setenv("AWS_S3_BUCKET", bucket)
    backend = backend_from_env()
    assert isinstance(backend, S3StorageBackend)
    location = backend.write_training_sample("qa", KOREAN)
    assert location.startswith(f"s3://{bucket}/training/qa/")
    monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "ftp")
    with pytest.raises(TrainingError, match="'ftp' is not 'local' or 's3'"):
        backend_from_env()
