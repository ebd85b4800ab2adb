"""Killed and stopped runs, as real processes with real signals: what they leave is cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from data_platform.s3sync import SyncOptions, download_prefix, upload_directory
from data_platform.s3sync.hashing import MIB
from data_platform_tests.faulty_proxy import Faults, FaultyProxy
from data_platform_tests.s3sync.conftest import SMALL_MULTIPART, s3_client_for, write_tree

BIG = 11 * MIB + 3


def _cli(endpoint_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "data_platform.cli", "s3", *args, "--endpoint-url", endpoint_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the transfer never got under way"
        time.sleep(0.05)


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.s3sync-tmp")]


def _start_held_download(proxy: FaultyProxy, bucket: str, target: Path) -> subprocess.Popen[str]:
    """A CLI download whose body the proxy holds, returned once its temporary file exists."""
    process = _cli(
        proxy.endpoint_url, "download", "--bucket", bucket, "--prefix", "d",
        "--local-dir", str(target),
    )  # fmt: skip
    _wait_until(lambda: target.is_dir() and bool(_temp_files(target)), process)
    return process


def _stop_while_held(process: subprocess.Popen[str], held: threading.Event) -> str:
    """SIGTERM while the proxy holds the transfer's requests, which it keeps holding until the
    process has exited: a stop must not wait for a stalled connection. Returns stderr."""
    try:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)  # the proxy holds for up to 300 s
    finally:
        held.set()
        if process.poll() is None:
            process.kill()
    return err


def _uploads(s3_client, bucket: str) -> list[str]:
    return [u["Key"] for u in s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_sigterm_during_download_removes_its_temporary_file(
    aws_env, s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    s3_client.put_object(Bucket=bucket, Key="d/blob.bin", Body=os.urandom(4 * MIB))
    target = tmp_path / "dst"
    faults = Faults(hold_bodies=threading.Event())
    with FaultyProxy(s3_endpoint, faults) as proxy:
        process = _start_held_download(proxy, bucket, target)
        err = _stop_while_held(process, faults.hold_bodies)
    assert "stopping: 1 transfer(s) in flight clean up first" in err
    assert process.returncode == 128 + signal.SIGTERM
    assert list(target.iterdir()) == []


def test_the_next_download_removes_what_a_killed_one_left(
    aws_env, s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    content = os.urandom(4 * MIB)
    s3_client.put_object(Bucket=bucket, Key="d/sub/blob.bin", Body=content)
    target = tmp_path / "dst"
    faults = Faults(hold_bodies=threading.Event())
    with FaultyProxy(s3_endpoint, faults) as proxy:
        process = _start_held_download(proxy, bucket, target)
        process.kill()
        process.communicate(timeout=60)
        faults.hold_bodies.set()
    assert _temp_files(target)  # what kill -9 leaves
    again = _cli(s3_endpoint, "download", "--bucket", bucket, "--prefix", "d/sub",
                 "--local-dir", str(target / "sub"))  # fmt: skip
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert _temp_files(target) == []
    assert (target / "sub" / "blob.bin").read_bytes() == content


def test_sigterm_during_multipart_upload_aborts_it(
    aws_env, s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    write_tree(tmp_path / "src", {"big.bin": os.urandom(BIG)})
    faults = Faults(hold_upload_parts=threading.Event())
    with FaultyProxy(s3_endpoint, faults) as proxy:
        process = _cli(
            proxy.endpoint_url, "upload", "--bucket", bucket, "--prefix", "u",
            "--local-dir", str(tmp_path / "src"),
            "--multipart-threshold-mb", "5", "--part-size-mb", "5",
        )  # fmt: skip
        _wait_until(lambda: faults.parts_held > 0, process)
        err = _stop_while_held(process, faults.hold_upload_parts)
    assert "stopping: 1 transfer(s) in flight clean up first" in err
    assert process.returncode == 128 + signal.SIGTERM
    assert _uploads(s3_client, bucket) == []
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)


def test_the_next_upload_aborts_stale_unfinished_uploads_of_its_own_keys(
    s3_client, bucket: str, tmp_path: Path
) -> None:
    for key in ("u/a.bin", "u/not-ours.txt", "elsewhere/a.bin", "u/small.txt"):
        s3_client.create_multipart_upload(Bucket=bucket, Key=key)
    write_tree(tmp_path / "src", {"a.bin": os.urandom(5 * MIB), "small.txt": b"s"})
    options = SyncOptions(
        policy=SMALL_MULTIPART,
        stale_upload_age=timedelta(0),
        cache_dir=None,
        progress_enabled=False,
    )
    assert upload_directory(s3_client, tmp_path / "src", bucket, "u", options).ok
    # Only a multipart-sized file can leave an upload behind: only its key is looked after.
    assert sorted(_uploads(s3_client, bucket)) == [
        "elsewhere/a.bin",
        "u/not-ours.txt",
        "u/small.txt",
    ]
    # Moto dates every upload 2010, so keeping uploads younger than an hour cannot be shown here.


def test_a_file_that_changes_while_uploading_fails_and_stores_nothing(
    s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    # 8 parts: obstore reads at most a few ahead, so the last ones are read after the append.
    path = tmp_path / "src" / "growing.bin"
    write_tree(tmp_path / "src", {"growing.bin": os.urandom(8 * 5 * MIB)})

    def append() -> None:  # as the first part reaches the server, the file grows
        with open(path, "ab") as out:
            out.write(b"more")

    faults = Faults(on_first_upload_part=append)
    options = SyncOptions(policy=SMALL_MULTIPART, cache_dir=None, progress_enabled=False)
    with FaultyProxy(s3_endpoint, faults) as proxy:
        report = upload_directory(
            s3_client_for(proxy.endpoint_url), tmp_path / "src", bucket, "c", options
        )
    assert faults.parts_seen >= 1
    assert [(f.name, f.reason) for f in report.failures] == [
        ("growing.bin", "changed while it was uploaded; nothing was stored, run the sync again")
    ]
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)
    assert _uploads(s3_client, bucket) == []


def test_a_non_utf8_file_name_is_named_in_real_and_dry_runs(
    aws_env, s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.txt").write_bytes(b"good")
    with open(os.path.join(os.fsencode(src), b"caf\xe9.txt"), "wb") as out:
        out.write(b"latin-1 name")
    common = ["upload", "--bucket", bucket, "--prefix", "n", "--local-dir", str(src)]
    for extra in (["--dry-run"], []):
        process = _cli(s3_endpoint, *common, *extra)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, (out, err)
        assert "failed: caf\\xe9.txt: file name is not valid UTF-8" in err
        assert "Traceback" not in err
        assert "caf" not in out.replace("failed 1", "")
    stored = s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in stored] == ["n/good.txt"]


def test_download_cleanup_ignores_a_dry_run(s3_client, bucket: str, tmp_path: Path) -> None:
    s3_client.put_object(Bucket=bucket, Key="d/x.txt", Body=b"x")
    leftover = tmp_path / ".x.txt.abc.s3sync-tmp"
    leftover.write_bytes(b"partial")
    options = SyncOptions(dry_run=True, cache_dir=None, progress_enabled=False)
    download_prefix(s3_client, bucket, "d", tmp_path, options)
    assert leftover.exists()  # a dry run changes nothing
