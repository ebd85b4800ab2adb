"""`data-platform training ...` in-process (CliRunner) and once as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.training import LocalStorageBackend, S3StorageBackend
from data_platform.training.cli import training


@pytest.fixture
def run(aws_env: dict[str, str], s3_endpoint: str, monkeypatch):
    for name in ("TRAINING_STORAGE_BACKEND", "TRAINING_LOCAL_DIR", "AWS_S3_BUCKET"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str):
        return CliRunner().invoke(training, [*args, "--endpoint-url", s3_endpoint])

    return invoke


@pytest.fixture
def local(tmp_path: Path) -> LocalStorageBackend:
    backend = LocalStorageBackend(tmp_path / "samples")
    for d in (9, 10):
        created = datetime(2026, 2, d, tzinfo=UTC)
        samples = [{"input": f"문서 {n}", "output": {"n": n % 5}} for n in range(10)]
        backend.write_training_samples("pdf_extraction", samples, created_at=created)
    backend.write_training_sample("chat", {"input": "안녕하세요", "output": "네"})
    return backend


def test_stats_list_export_on_a_local_folder(run, local: LocalStorageBackend, tmp_path) -> None:
    where = ["--local-dir", str(local.root)]
    stats = run("stats", "--json", *where)
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout) == local.get_dataset_stats()
    text = run("stats", *where)
    assert "2 tasks: 3 files, 21 samples" in text.stdout

    listed = run("list", "pdf_extraction", "--since", "2026-02-10", *where)
    assert listed.stdout.splitlines() == local.list_samples("pdf_extraction", since="2026-02-10")

    out = tmp_path / "export" / "pdf.jsonl"
    split = ["--split", "train=0.5,val=0.5", "--seed", "3"]
    exported = run("export", "pdf_extraction", str(out), "--dedupe", *split, *where)
    assert exported.exit_code == 0, exported.output
    assert "read 20 samples, dropped 10 duplicates, wrote pdf.train.jsonl" in exported.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["pdf.train.jsonl", "pdf.val.jsonl"]


def test_validate_exit_status_and_verbose_lines(run, local: LocalStorageBackend) -> None:
    where = ["--local-dir", str(local.root)]
    clean = run("validate", "pdf_extraction", *where)
    assert clean.exit_code == 0 and "0 PII findings, 0 other problems" in clean.output
    local.store.put(
        "chat/2026/02/11/imported.jsonl", b'{"input": "kim@example.com", "output": 1}\n'
    )
    found = run("validate", "chat", "--verbose", *where)
    assert found.exit_code == 1
    assert f"{local.root}/chat/2026/02/11/imported.jsonl:1: EMAIL at $.input" in found.stdout
    assert "kim@" not in found.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "Bad Task"], "invalid task name 'Bad Task'"),
        (["list", "chat", "--since", "yesterday"], "--since 'yesterday' is not a date"),
        (["export", "chat", "x.jsonl", "--split", "train=2"], "bad split"),
        (
            ["list", "chat", "--since", "2026-02-11", "--until", "2026-02-09"],
            "--since 2026-02-11 is after --until 2026-02-09: swap them",
        ),
    ],
)
def test_bad_input_is_one_line_without_traceback(run, local, args, message) -> None:
    result = run(*args, "--local-dir", str(local.root))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and message in line


def test_export_of_a_range_ending_before_it_starts_writes_nothing(run, local, tmp_path) -> None:
    out = tmp_path / "out" / "chat.jsonl"
    result = run("export", "chat", str(out), "--since", "2026-02-11", "--until", "2026-02-09",
                 "--local-dir", str(local.root))  # fmt: skip
    assert result.exit_code == 1
    assert result.output == "Error: --since 2026-02-11 is after --until 2026-02-09: swap them\n"
    assert not out.parent.exists()


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["bootstrap-bucket", "--bucket", "Bad_Name!"], "Bad_Name!"),
        (["bootstrap-bucket", "--bucket", "192.168.5.4"], "192.168.5.4"),
        (["stats", "--bucket", "ab"], "ab"),
    ],
)
def test_a_bucket_name_s3_would_refuse_is_one_line(run, args, name) -> None:
    result = run(*args)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: bucket name {name!r} is not valid for S3: it must have ")


@pytest.mark.parametrize(
    "args", [["stats"], ["list", "chat"], ["validate", "chat"], ["export", "chat", "out.jsonl"]]
)
def test_a_missing_sample_folder_is_an_error_not_an_empty_store(run, tmp_path, args) -> None:
    missing = tmp_path / "no-such-folder"
    result = run(*args, "--local-dir", str(missing))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line == (
        f"Error: sample folder {missing} does not exist; check --local-dir or TRAINING_LOCAL_DIR"
    )
    assert not missing.exists()


def test_a_broken_stored_line_names_file_and_line(
    run, local: LocalStorageBackend, tmp_path
) -> None:
    local.store.put("chat/2026/02/11/broken.jsonl", b'{"input": 1, "output": 2}\n{"input": \n')
    result = run("export", "chat", str(tmp_path / "x.jsonl"), "--local-dir", str(local.root))
    assert result.exit_code == 1
    assert (
        f"{local.root}/chat/2026/02/11/broken.jsonl line 2: not a valid JSON object"
        in result.output
    )
    assert "Traceback" not in result.output and not (tmp_path / "x.jsonl").exists()


def test_bootstrap_bucket_command(aws_env: dict[str, str], moto_endpoint: str) -> None:
    """On moto: SeaweedFS answers NotImplemented to public-access blocks and lifecycle rules."""

    def run(*args: str):
        return CliRunner().invoke(training, [*args, "--endpoint-url", moto_endpoint])

    bucket = f"test-{uuid.uuid4().hex[:16]}"
    boot = run("bootstrap-bucket", "--bucket", bucket, "--dry-run")
    assert boot.exit_code == 0, boot.output
    assert "would call create_bucket" in boot.stdout and "would make 4 changes" in boot.stdout
    assert run("bootstrap-bucket", "--bucket", bucket).exit_code == 0
    again = run("bootstrap-bucket", "--bucket", bucket)
    assert "nothing changed" in again.stdout


def test_s3_migrate_and_stats(run, local: LocalStorageBackend, s3_client, bucket: str) -> None:
    migrated = run("migrate", "--from-local", str(local.root), "--to", f"s3://{bucket}/training/")
    assert migrated.exit_code == 0, migrated.output
    assert "2 tasks: uploaded 3 files, skipped 0 identical, failed 0" in migrated.stdout
    stats = run("stats", "--json", "--bucket", bucket)
    assert json.loads(stats.stdout) == local.get_dataset_stats()
    remote = S3StorageBackend(bucket, client=s3_client)
    assert run("list", "chat", "--bucket", bucket).stdout.splitlines() == remote.list_samples(
        "chat"
    )


def test_stats_as_a_real_process_from_the_seed_variables(
    aws_env, s3_endpoint: str, s3_client, bucket: str
) -> None:
    S3StorageBackend(bucket, client=s3_client).write_training_sample(
        "ocr", {"input": 1, "output": 2}
    )
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "TRAINING_STORAGE_BACKEND": "s3",
        "AWS_S3_BUCKET": bucket,
    }
    done = subprocess.run(
        [sys.executable, "-m", "data_platform.cli", "training", "stats", "ocr"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 tasks: 1 files, 1 samples" in done.stdout


def test_s3_commands_on_environment_keys_do_not_import_boto3(
    aws_env, s3_endpoint: str, s3_client, bucket: str
) -> None:
    """obstore carries the data; boto3 (~0.4 s to import) is only for profiles, MFA and roles."""
    S3StorageBackend(bucket, client=s3_client).write_training_sample(
        "ocr", {"input": 1, "output": 2}
    )
    probe = (
        "import sys\n"
        "from data_platform.cli import main\n"
        "main(['training', 'stats', 'ocr', '--bucket', sys.argv[1], '--endpoint-url', "
        "sys.argv[2]], standalone_mode=False)\n"
        "print('BOTO3', 'boto3' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, bucket, s3_endpoint],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 tasks: 1 files, 1 samples" in done.stdout
    assert "BOTO3 False" in done.stdout
