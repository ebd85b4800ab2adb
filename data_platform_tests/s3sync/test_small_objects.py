"""Small objects: downloaded on the event loop, synced once per batch, then renamed into place."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from data_platform.core import files
from data_platform.s3sync import SyncOptions, download_prefix, small_objects
from data_platform_tests.faulty_proxy import Faults, FaultyProxy
from data_platform_tests.s3sync.conftest import read_tree, s3_client_for
from data_platform_tests.s3sync.test_interrupts import _cli, _stop_while_held, _wait_until

SMALL = {f"part-{index:02d}.csv": os.urandom(10_000 + index) for index in range(12)}


def _put_all(s3_client, bucket: str, prefix: str, contents: dict[str, bytes]) -> None:
    for name, body in contents.items():
        s3_client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body)


def test_every_batch_is_synced_before_any_of_its_files_takes_its_name(
    s3_client, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put_all(s3_client, bucket, "d", SMALL)
    target = tmp_path / "dst"
    real_syncfs = files._libc_syncfs()
    assert real_syncfs is not None  # Linux: the batch path is the one under test
    named_at_sync: list[list[str]] = []

    def watched_syncfs(fd: int) -> int:
        named_at_sync.append(sorted(p.name for p in target.glob("part-*.csv")))
        assert list(target.glob(".part-*.s3sync-tmp"))  # the batch, still unnamed
        return real_syncfs(fd)

    monkeypatch.setattr(files, "_libc_syncfs", lambda: watched_syncfs)
    monkeypatch.setattr(small_objects, "BATCH_FILES", 5)
    options = SyncOptions(workers=4, progress_enabled=False)

    report = download_prefix(s3_client, bucket, "d", target, options)

    assert report.ok and report.transferred == len(SMALL)
    assert read_tree(target) == SMALL
    # A batch goes at 5 waiting files (more arrive while one is being synced): 2 or more.
    assert len(named_at_sync) >= 2
    renamed_before = [len(names) for names in named_at_sync]
    assert renamed_before == sorted(renamed_before)  # each sync sees only earlier batches named
    assert renamed_before[0] == 0


def test_a_batch_whose_sync_fails_renames_nothing_and_leaves_no_temporary_file(
    s3_client, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put_all(s3_client, bucket, "d", SMALL)
    target = tmp_path / "dst"

    def failing_syncfs(_fd: int) -> int:
        import ctypes

        ctypes.set_errno(5)  # EIO: the disk lost writes
        return -1

    monkeypatch.setattr(files, "_libc_syncfs", lambda: failing_syncfs)
    report = download_prefix(s3_client, bucket, "d", target, SyncOptions(progress_enabled=False))

    assert sorted(f.name for f in report.failures) == sorted(SMALL)
    assert all("Input/output error" in f.reason for f in report.failures)
    assert report.transferred == 0
    assert list(target.iterdir()) == []


def test_rename_durably_reports_each_move_and_removes_what_could_not_move(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()  # a folder where one file should go
    moves = []
    for name in ("a", "taken", "b"):
        temp = tmp_path / f".{name}.tmp"
        temp.write_bytes(name.encode())
        moves.append((temp, tmp_path / name))

    errors = files.rename_durably(moves)

    assert [error is None for error in errors] == [True, False, True]
    assert isinstance(errors[1], IsADirectoryError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "taken"]
    assert (tmp_path / "a").read_bytes() == b"a"


def test_sigterm_while_small_bodies_are_held_leaves_nothing(
    aws_env, s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    _put_all(s3_client, bucket, "d", SMALL)
    target = tmp_path / "dst"
    faults = Faults(hold_bodies=threading.Event())
    with FaultyProxy(s3_endpoint, faults) as proxy:
        process = _cli(
            proxy.endpoint_url, "download", "--bucket", bucket, "--prefix", "d",
            "--local-dir", str(target), "--workers", "4",
        )  # fmt: skip
        _wait_until(lambda: faults.calls["GetObject"] >= 4, process)  # 4 bodies held half-way
        err = _stop_while_held(process, faults.hold_bodies)
    assert "stopping: 12 transfer(s) in flight clean up first" in err
    assert process.returncode == 128 + signal.SIGTERM
    assert not target.exists() or list(target.rglob("*")) == []


def test_an_object_that_is_not_its_etag_takes_the_general_path(
    s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    """A corrupted body: the general path fetches it again and refuses it by name."""
    _put_all(s3_client, bucket, "d", {"one.csv": b"x" * 5000})
    with FaultyProxy(s3_endpoint, Faults(corrupt_bodies=True)) as proxy:
        report = download_prefix(
            s3_client_for(proxy.endpoint_url), bucket, "d", tmp_path / "dst",
            SyncOptions(progress_enabled=False),
        )  # fmt: skip
        gets = proxy.faults.calls["GetObject"]
    assert [f.name for f in report.failures] == ["one.csv"]
    assert "do not match" in report.failures[0].reason
    assert gets == 2  # once on the loop, once the general way
    assert list((tmp_path / "dst").iterdir()) == []


def test_tasks_alive_at_once_stay_within_the_window(
    s3_client, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million queued files must not become a million tasks: only requests + 2 batches."""
    many = {f"f{index:03d}": os.urandom(100) for index in range(40)}
    _put_all(s3_client, bucket, "d", many)
    monkeypatch.setattr(small_objects, "BATCH_FILES", 2)
    alive, most = [0], [0]
    real_download = small_objects.SmallObjectDownloads._download

    async def counted(self, *job):
        alive[0] += 1
        most[0] = max(most[0], alive[0])
        try:
            return await real_download(self, *job)
        finally:
            alive[0] -= 1

    monkeypatch.setattr(small_objects.SmallObjectDownloads, "_download", counted)
    options = SyncOptions(workers=2, progress_enabled=False)
    report = download_prefix(s3_client, bucket, "d", tmp_path / "dst", options)

    assert report.ok and report.transferred == len(many)
    assert read_tree(tmp_path / "dst") == many
    assert 2 < most[0] <= 2 + 2 * 2


def test_once_an_etag_proves_not_an_md5_the_rest_go_the_general_way_at_once(
    s3_endpoint: str, s3_client, bucket: str, tmp_path: Path
) -> None:
    """As in a bucket with SSE-KMS default encryption (foreign objects, no `md5` metadata): the
    general way accepts what the loop could not check, and the loop stops reading such objects
    first (each would be read twice). The proxy's changed bytes stand in for an ETag that is
    not the MD5; the general way is recorded, not run (it has tests of its own)."""
    import threading
    from concurrent.futures import Future

    from data_platform.s3sync.hashcache import HashCache
    from data_platform.s3sync.inventory import list_remote
    from data_platform.s3sync.progress import Progress
    from data_platform.s3sync.remote import Remote

    _put_all(s3_client, bucket, "d", {"a.csv": b"a" * 100, "b.csv": b"b" * 100})
    sent_the_general_way: list[str] = []

    def general(remote, _target, _relative) -> Future[int]:
        sent_the_general_way.append(remote.key)
        done: Future[int] = Future()
        done.set_result(remote.size)
        return done

    with FaultyProxy(s3_endpoint, Faults(corrupt_bodies=True)) as proxy:
        remote = Remote(s3_client_for(proxy.endpoint_url), bucket)
        listed = list_remote(remote, "d/")
        downloads = small_objects.SmallObjectDownloads(
            remote, HashCache(None), Progress("download", 2, 200, enabled=False),
            threading.Event(), 0o644, requests=4, general=general,
        )  # fmt: skip
        try:
            first = downloads.submit(listed["d/a.csv"], tmp_path / "a.csv", "a.csv")
            assert first.result(timeout=60) == 100
            second = downloads.submit(listed["d/b.csv"], tmp_path / "b.csv", "b.csv")
            assert second.result(timeout=60) == 100
        finally:
            downloads.close()
        gets = proxy.faults.calls["GetObject"]
    assert sent_the_general_way == ["d/a.csv", "d/b.csv"]
    assert gets == 1  # b.csv was not read on the loop first
    assert list(tmp_path.glob("*.csv")) == []  # the loop wrote nothing it could not check


def test_files_that_finish_during_a_slow_sync_are_renamed_after_it(
    s3_client, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch timer firing while a sync is still running must not strand the next batch."""
    import time

    _put_all(s3_client, bucket, "d", SMALL)
    real_syncfs = files._libc_syncfs()
    syncs = [0]

    def slow_syncfs(fd: int) -> int:
        syncs[0] += 1
        time.sleep(0.5 if syncs[0] == 1 else 0)  # the rest finish, and the timer fires, meanwhile
        return real_syncfs(fd)

    monkeypatch.setattr(files, "_libc_syncfs", lambda: slow_syncfs)
    monkeypatch.setattr(small_objects, "BATCH_SECONDS", 0.01)
    outcome: list[object] = []
    options = SyncOptions(workers=1, progress_enabled=False)
    worker = threading.Thread(
        target=lambda: outcome.append(download_prefix(s3_client, bucket, "d", tmp_path, options)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=60)

    assert not worker.is_alive(), "files waiting for a batch were never renamed"
    assert outcome[0].ok and outcome[0].transferred == len(SMALL)
    assert read_tree(tmp_path) == SMALL
    assert syncs[0] >= 2
