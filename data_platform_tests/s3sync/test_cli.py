"""The `s3` click group, in-process with CliRunner and once as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from data_platform.s3sync.cli import s3
from data_platform.s3sync.hashing import MIB
from data_platform_tests.s3sync.conftest import SAMPLE_TREE, bucket_contents, write_tree


@pytest.fixture
def run(aws_env: dict[str, str], s3_endpoint: str, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DATA_PLATFORM_CACHE_DIR", str(tmp_path / "cache"))

    def invoke(*args: str):
        return CliRunner().invoke(s3, [*args, "--endpoint-url", s3_endpoint])

    return invoke


def test_upload_then_no_op_then_download(run, tmp_path: Path, bucket: str) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    up = run("upload", "--local-dir", str(tmp_path / "src"), "--bucket", bucket, "--prefix", "d")
    assert up.exit_code == 0, up.output
    assert f"uploaded {len(SAMPLE_TREE)}, skipped 0, failed 0" in up.stdout

    again = run("upload", "--local-dir", str(tmp_path / "src"), "--bucket", bucket, "--prefix", "d")
    assert f"uploaded 0, skipped {len(SAMPLE_TREE)}, failed 0" in again.stdout

    down = run(
        "download", "--local-dir", str(tmp_path / "dst"), "--bucket", bucket, "--prefix", "d"
    )
    assert down.exit_code == 0, down.output
    assert f"downloaded {len(SAMPLE_TREE)}," in down.stdout
    assert (tmp_path / "dst" / "readme.txt").read_bytes() == SAMPLE_TREE["readme.txt"]


def test_dry_run_prints_plan_and_writes_nothing(
    run, tmp_path: Path, s3_client, bucket: str
) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"a", "b/c.txt": b"c"})
    result = run(
        "upload",
        "--local-dir",
        str(tmp_path / "src"),
        "--bucket",
        bucket,
        "--prefix",
        "d",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert f"upload: s3://{bucket}/d/a.txt" in result.stdout
    assert f"upload: s3://{bucket}/d/b/c.txt" in result.stdout
    assert "would upload 2, skipped 0" in result.stdout
    assert bucket_contents(s3_client, bucket) == {}


def test_missing_local_dir(run, tmp_path: Path, s3_client, bucket: str) -> None:
    result = run("upload", "--local-dir", str(tmp_path / "nope"), "--bucket", bucket)
    assert result.exit_code != 0
    assert "does not exist; check --local-dir" in result.output
    assert bucket_contents(s3_client, bucket) == {}


def test_missing_bucket(run, tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"a"})
    up = run("upload", "--local-dir", str(tmp_path / "src"), "--bucket", "no-such-bucket-cli")
    assert up.exit_code == 1
    assert "bucket 'no-such-bucket-cli' does not exist" in up.output
    down = run("download", "--local-dir", str(tmp_path / "dst"), "--bucket", "no-such-bucket-cli")
    assert down.exit_code == 1
    assert not (tmp_path / "dst").exists()


def test_unreadable_file_is_named_and_exit_is_non_zero(
    run, tmp_path: Path, s3_client, bucket: str
) -> None:
    write_tree(tmp_path / "src", {"good.txt": b"good"})
    (tmp_path / "src" / "bad.txt").symlink_to(tmp_path / "missing")
    result = run("upload", "--local-dir", str(tmp_path / "src"), "--bucket", bucket)
    assert result.exit_code == 1
    assert "failed: bad.txt: No such file or directory (broken symlink" in result.stderr
    assert "uploaded 1, skipped 0, failed 1" in result.stdout
    assert bucket_contents(s3_client, bucket) == {"good.txt": b"good"}


def test_real_process(
    aws_env: dict[str, str], s3_endpoint: str, tmp_path: Path, bucket: str, s3_client
) -> None:
    write_tree(tmp_path / "src", {"x/y.csv": b"1,2\n"})
    env = {**os.environ, "DATA_PLATFORM_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "data_platform.cli", "s3", "upload"]
    command += ["--local-dir", str(tmp_path / "src"), "--bucket", bucket, "--prefix", "p/"]
    command += ["--endpoint-url", s3_endpoint]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("uploaded 1, skipped 0, failed 0")
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert bucket_contents(s3_client, bucket) == {"p/x/y.csv": b"1,2\n"}


# Runs the CLI in a child process and prints that process's peak resident memory (KiB) last.
_PEAK_RSS = """
import resource, sys
from data_platform.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_download_streams_bodies_in_small_pieces(
    aws_env: dict[str, str], s3_endpoint: str, tmp_path: Path, bucket: str, s3_client
) -> None:
    # obstore's default hands a body out in 10 MB buffers: 8 files of 12 MB at once then held
    # ~100-150 MB more than a no-op run (a fresh buffer each, paid in page faults).
    for index in range(8):
        s3_client.put_object(Bucket=bucket, Key=f"p/big-{index}.bin", Body=os.urandom(12 * MIB))
    env = {**os.environ, "DATA_PLATFORM_CACHE_DIR": str(tmp_path / "cache")}

    def peak_rss_mib(*args: str) -> float:
        command = [sys.executable, "-c", _PEAK_RSS, "s3", "download", "--workers", "8"]
        command += ["--local-dir", str(tmp_path / "dst"), "--bucket", bucket, "--prefix", "p"]
        command += ["--endpoint-url", s3_endpoint, *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        return int(lines[-1]) / 1024

    downloading = peak_rss_mib()
    assert len(list((tmp_path / "dst").iterdir())) == 8
    idle = peak_rss_mib()  # the same process with nothing to download (all 8 skipped)
    assert downloading - idle < 40, (downloading, idle)
