"""The Dagster assets on a real store: observation counts, a day's dataset and its checks."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from data_platform.training import backend_from_env
from data_platform.training.dataset import dataset_key as dataset_file_key
from data_platform.training.defs import (
    CHECK_FIELDS,
    CHECK_IDS,
    CHECK_NO_PII,
    OBSERVE_JOB_NAME,
    dataset_key,
    defs,
    producer_key,
    samples_key,
)
from data_platform.training.tasks import configured_tasks
from data_platform_tests.automation import AutomationTicks

DAY = datetime(2026, 2, 9, 10, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def store_env(request, monkeypatch, tmp_path: Path) -> str:
    """The seed's variables pointing at a folder or at a fresh bucket."""
    monkeypatch.delenv("TRAINING_PII_STRICT", raising=False)
    monkeypatch.delenv("ENABLE_TRAINING_COLLECTION", raising=False)
    if request.param == "local":
        monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "local")
        monkeypatch.setenv("TRAINING_LOCAL_DIR", str(tmp_path / "samples"))
    else:
        request.getfixturevalue("aws_env")
        monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "s3")
        monkeypatch.setenv("AWS_S3_BUCKET", request.getfixturevalue("bucket"))
        monkeypatch.setenv("AWS_ENDPOINT_URL", request.getfixturevalue("s3_endpoint"))
    return request.param


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_observe_and_a_clean_day(store_env: str) -> None:
    backend = backend_from_env()
    samples = [{"input": f"문서 {n % 4}", "output": {"n": n % 4}} for n in range(10)]
    backend.write_training_samples("ocr", samples, created_at=DAY)
    backend.write_training_samples("ocr", samples[:3], created_at=DAY.replace(day=10))
    definitions = defs(["ocr"])

    observed = definitions.resolve_job_def(OBSERVE_JOB_NAME).execute_in_process()
    [event] = observed.get_asset_observation_events()
    assert event.asset_key == samples_key("ocr")
    metadata = event.asset_observation_data.asset_observation.metadata
    assert metadata["files"].value == 2 and metadata["dagster/row_count"].value == 13
    assert metadata["last_day"].value == "2026-02-10"

    result = dg.materialize(
        [definitions.get_assets_def(dataset_key("ocr"))],
        partition_key="2026-02-09",
        resources=definitions.resources,
    )
    assert result.success
    assert checks(result) == {CHECK_NO_PII: True, CHECK_FIELDS: True, CHECK_IDS: True}
    partitions = {e.partition for e in result.get_asset_check_evaluations()}
    assert partitions == {"2026-02-09"}
    [materialization] = result.asset_materializations_for_node("training__ocr__ocr_dataset")
    assert materialization.metadata["dagster/row_count"].value == 4
    location = backend.location(dataset_file_key("ocr", DAY.date(), "parquet"))
    assert materialization.metadata["dagster/uri"].value == location
    assert materialization.metadata["duplicates_dropped"].value == 6
    frame = pl.read_parquet(
        io.BytesIO(backend.store.get(dataset_file_key("ocr", DAY.date(), "parquet")))
    )
    assert frame.height == 4 and frame.schema["created_at"] == pl.Datetime("us", "UTC")
    assert sorted(json.loads(v) for v in frame["input"]) == [f"문서 {n}" for n in range(4)]
    jsonl = backend.store.get(dataset_file_key("ocr", DAY.date(), "jsonl")).decode()
    assert len(jsonl.splitlines()) == 4


def test_checks_fail_on_pii_missing_fields_and_repeated_ids(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "local")
    monkeypatch.setenv("TRAINING_LOCAL_DIR", str(tmp_path / "samples"))
    backend = backend_from_env()
    lines = [
        {"id": "x", "input": "메일 kim@example.com", "output": 1},
        {"id": "x", "input": "another", "output": 2},
        {"id": "y", "output": "no input"},
    ]
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    backend.store.put("ocr/2026/02/09/imported.jsonl", data)
    definitions = defs(["ocr"])
    result = dg.materialize(
        [definitions.get_assets_def(dataset_key("ocr"))],
        partition_key="2026-02-09",
        resources=definitions.resources,
        raise_on_error=False,
    )
    assert checks(result) == {CHECK_NO_PII: False, CHECK_FIELDS: False, CHECK_IDS: False}
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    where = evaluations[CHECK_NO_PII].metadata["where"].value
    assert where == [f"{backend.location('ocr/2026/02/09/imported.jsonl')}:1: EMAIL at $.input"]


def test_tasks_file(tmp_path: Path) -> None:
    path = tmp_path / "training_tasks.toml"
    assert configured_tasks(path) == []
    path.write_text('tasks = ["qa", "ocr", "qa"]\n')
    assert configured_tasks(path) == ["ocr", "qa"]
    path.write_text('tasks = ["Bad Name"]\n')
    with pytest.raises(ValueError, match="invalid task name"):
        configured_tasks(path)
    assert not defs([]).assets


def test_datasets_are_built_on_cron_for_yesterday_and_today(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINING_STORAGE_BACKEND", "local")
    monkeypatch.setenv("TRAINING_LOCAL_DIR", str(tmp_path / "samples"))
    definitions = defs(["ocr"])
    graph = definitions.resolve_asset_graph()
    dataset = graph.get(dataset_key("ocr"))
    assert isinstance(dataset.freshness_policy, dg.FreshnessPolicy)
    assert graph.get(samples_key("ocr")).parent_keys == {producer_key("ocr")}
    ticks = AutomationTicks(definitions, dataset_key("ocr"))
    before = datetime(2026, 3, 5, 0, 5, tzinfo=UTC)
    assert ticks.tick(before) == {}
    after = before.replace(minute=15)  # past the 00:10 tick
    assert ticks.tick(after) == {dataset_key("ocr"): {"2026-03-04", "2026-03-05"}}
