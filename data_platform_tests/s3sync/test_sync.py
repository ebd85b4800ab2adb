"""Upload/download against the real moto server over HTTP."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_platform.core.files import READ_BLOCK
from data_platform.s3sync import SyncError, SyncOptions, download_prefix, upload_directory
from data_platform_tests.s3sync.conftest import (
    SAMPLE_TREE,
    CountingClient,
    bucket_contents,
    read_tree,
    rewrite_keeping_times,
    s3_client_for,
    write_tree,
)


def test_upload_keeps_relative_paths_under_prefix(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    report = upload_directory(s3_client, tmp_path / "src", bucket, "data", options)
    assert (report.transferred, report.skipped, report.failed) == (len(SAMPLE_TREE), 0, 0)
    assert report.bytes_transferred == sum(len(content) for content in SAMPLE_TREE.values())
    assert bucket_contents(s3_client, bucket) == {
        f"data/{name}": content for name, content in SAMPLE_TREE.items()
    }


def test_upload_of_a_local_store_folder_leaves_out_its_bookkeeping(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    from data_platform.core.objectstore_local import LocalObjectStore

    store = LocalObjectStore(tmp_path / "training")
    store.put("qa/2026/01/02/a.jsonl", b"{}\n", {"sample-count": "1"})
    assert (tmp_path / "training" / ".objectstore").is_dir()
    (tmp_path / "training" / "qa" / ".objectstore").mkdir()  # only the root's is bookkeeping
    (tmp_path / "training" / "qa" / ".objectstore" / "x").write_bytes(b"x")

    report = upload_directory(s3_client, tmp_path / "training", bucket, "t", options)

    assert report.ok
    assert sorted(bucket_contents(s3_client, bucket)) == [
        "t/qa/.objectstore/x",
        "t/qa/2026/01/02/a.jsonl",
    ]


@pytest.mark.parametrize("prefix", ["data/", "/data", ""])
def test_prefix_with_or_without_slash(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions, prefix: str
) -> None:
    write_tree(tmp_path / "src", {"a/b.txt": b"x"})
    upload_directory(s3_client, tmp_path / "src", bucket, prefix, options)
    expected = "data/a/b.txt" if prefix.strip("/") else "a/b.txt"
    assert list(bucket_contents(s3_client, bucket)) == [expected]


def test_second_upload_skips_everything_with_one_listing(
    tmp_path: Path, counting: CountingClient, bucket: str, options: SyncOptions
) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    upload_directory(counting.client, tmp_path / "src", bucket, "data", options)
    counting.calls.clear()

    report = upload_directory(counting.client, tmp_path / "src", bucket, "data", options)

    assert (report.transferred, report.skipped, report.failed) == (0, len(SAMPLE_TREE), 0)
    assert dict(counting.calls) == {"ListObjectsV2": 1}


@pytest.mark.parametrize("use_cache", [True, False])
def test_same_size_changed_content_is_uploaded_again(
    tmp_path: Path, s3_client, bucket: str, use_cache: bool
) -> None:
    options = SyncOptions(cache_dir=tmp_path / "cache" if use_cache else None, workers=4)
    write_tree(tmp_path / "src", SAMPLE_TREE)
    upload_directory(s3_client, tmp_path / "src", bucket, "data", options)
    upload_directory(s3_client, tmp_path / "src", bucket, "data", options)  # cache warm
    changed = tmp_path / "src" / "readme.txt"
    rewrite_keeping_times(changed, b"HELLO\n")

    report = upload_directory(s3_client, tmp_path / "src", bucket, "data", options)

    assert (report.transferred, report.skipped) == (1, len(SAMPLE_TREE) - 1)
    body = s3_client.get_object(Bucket=bucket, Key="data/readme.txt")["Body"].read()
    assert body == b"HELLO\n"


def test_same_size_object_written_by_someone_else_is_replaced(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"ours"})
    s3_client.put_object(Bucket=bucket, Key="data/a.txt", Body=b"them")
    report = upload_directory(s3_client, tmp_path / "src", bucket, "data", options)
    assert report.transferred == 1
    assert bucket_contents(s3_client, bucket) == {"data/a.txt": b"ours"}


def test_download_restores_identical_tree_then_skips(
    tmp_path: Path, counting: CountingClient, bucket: str, options: SyncOptions
) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    upload_directory(counting.client, tmp_path / "src", bucket, "data/", options)

    report = download_prefix(counting.client, bucket, "data", tmp_path / "dst", options)
    assert (report.transferred, report.failed) == (len(SAMPLE_TREE), 0)
    assert read_tree(tmp_path / "dst") == SAMPLE_TREE

    counting.calls.clear()
    again = download_prefix(counting.client, bucket, "data", tmp_path / "dst", options)
    assert (again.transferred, again.skipped) == (0, len(SAMPLE_TREE))
    assert dict(counting.calls) == {"ListObjectsV2": 1}


def test_download_replaces_same_size_local_change(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    upload_directory(s3_client, tmp_path / "src", bucket, "data", options)
    download_prefix(s3_client, bucket, "data", tmp_path / "dst", options)
    rewrite_keeping_times(tmp_path / "dst" / "readme.txt", b"HELLO\n")

    report = download_prefix(s3_client, bucket, "data", tmp_path / "dst", options)

    assert (report.transferred, report.skipped) == (1, len(SAMPLE_TREE) - 1)
    assert read_tree(tmp_path / "dst") == SAMPLE_TREE


def test_downloaded_files_get_normal_permissions(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    s3_client.put_object(Bucket=bucket, Key="data/a.txt", Body=b"a")
    download_prefix(s3_client, bucket, "data", tmp_path / "dst", options)
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "dst" / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_dry_run_changes_nothing(tmp_path: Path, s3_client, bucket: str) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    upload_directory(s3_client, tmp_path / "src", bucket, "data", SyncOptions(cache_dir=None))
    before = bucket_contents(s3_client, bucket)
    rewrite_keeping_times(tmp_path / "src" / "readme.txt", b"HELLO\n")
    write_tree(tmp_path / "src", {"new/file.csv": b"1"})
    dry = SyncOptions(dry_run=True, cache_dir=tmp_path / "dry-cache")

    planned_up = upload_directory(s3_client, tmp_path / "src", bucket, "data", dry)
    assert sorted(planned_up.planned) == [
        ("upload", "data/new/file.csv"),
        ("upload", "data/readme.txt"),
    ]
    assert (planned_up.transferred, planned_up.skipped) == (2, len(SAMPLE_TREE) - 1)
    assert bucket_contents(s3_client, bucket) == before

    planned_down = download_prefix(s3_client, bucket, "data", tmp_path / "new" / "dst", dry)
    assert len(planned_down.planned) == len(SAMPLE_TREE)
    assert {action for action, _ in planned_down.planned} == {"download"}
    assert not (tmp_path / "new").exists()
    assert not (tmp_path / "dry-cache").exists()  # not even the hash cache is written


def test_missing_local_dir_is_an_error(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    with pytest.raises(SyncError, match="does not exist"):
        upload_directory(s3_client, tmp_path / "nope", bucket, "data", options)
    assert bucket_contents(s3_client, bucket) == {}


def test_missing_bucket_is_an_error_before_anything_changes(
    tmp_path: Path, s3_client, options: SyncOptions
) -> None:
    write_tree(tmp_path / "src", SAMPLE_TREE)
    with pytest.raises(SyncError, match="bucket 'no-such-bucket-s3sync' does not exist"):
        upload_directory(s3_client, tmp_path / "src", "no-such-bucket-s3sync", "data", options)
    with pytest.raises(SyncError, match="does not exist"):
        download_prefix(s3_client, "no-such-bucket-s3sync", "data", tmp_path / "dst", options)
    assert not (tmp_path / "dst").exists()


def test_unreadable_entries_fail_by_name_and_the_rest_still_go(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    # Tests run as root, where chmod 000 does not stop reads: use entries no one can read.
    write_tree(tmp_path / "src", SAMPLE_TREE)
    (tmp_path / "src" / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    os.mkfifo(tmp_path / "src" / "pipe.csv")

    report = upload_directory(s3_client, tmp_path / "src", bucket, "data", options)

    reasons = {failure.name: failure.reason for failure in report.failures}
    assert set(reasons) == {"dangling.csv", "pipe.csv"}
    assert "broken symlink" in reasons["dangling.csv"]
    assert "not a regular file" in reasons["pipe.csv"]
    assert not report.ok
    assert report.transferred == len(SAMPLE_TREE)
    assert set(bucket_contents(s3_client, bucket)) == {f"data/{name}" for name in SAMPLE_TREE}


def test_keys_that_cannot_be_file_paths_stop_the_download_before_anything_is_written(
    tmp_path: Path, moto_endpoint: str, moto_bucket: str, options: SyncOptions
) -> None:
    # AWS stores such a key; SeaweedFS refuses it, moto keeps it as AWS does. obstore refuses to
    # list it at all, so the whole download stops with one clear line and writes nothing.
    s3_client, bucket = s3_client_for(moto_endpoint), moto_bucket
    s3_client.put_object(Bucket=bucket, Key="data/ok.txt", Body=b"ok")
    s3_client.put_object(Bucket=bucket, Key="data/../escape.txt", Body=b"evil")
    listed = {item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "data/../escape.txt" in listed  # the server kept the key as is

    with pytest.raises(SyncError, match=r"data/\.\./escape\.txt.*cannot be a file path"):
        download_prefix(s3_client, bucket, "data", tmp_path / "dst", options)
    assert read_tree(tmp_path) == {}


def test_failed_download_leaves_no_partial_file(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    s3_client.put_object(Bucket=bucket, Key="data/a.txt", Body=b"a")
    s3_client.put_object(Bucket=bucket, Key="data/taken", Body=b"object")
    (tmp_path / "dst" / "taken").mkdir(parents=True)  # a folder where the file should go

    report = download_prefix(s3_client, bucket, "data", tmp_path / "dst", options)

    assert [failure.name for failure in report.failures] == ["taken"]
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["a.txt", "taken"]
    assert list((tmp_path / "dst" / "taken").iterdir()) == []


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """The kernel's own short write: a write crossing RLIMIT_FSIZE stops at the limit."""
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def test_a_short_write_fails_the_download_instead_of_leaving_a_hole(
    tmp_path: Path, s3_client, bucket: str, options: SyncOptions
) -> None:
    body = os.urandom(READ_BLOCK + 1000)  # the last block is the one cut short
    s3_client.put_object(Bucket=bucket, Key="data/cut.bin", Body=body)
    (tmp_path / "dst").mkdir()

    with file_size_limit(READ_BLOCK + 500):
        report = download_prefix(s3_client, bucket, "data", tmp_path / "dst", options)

    assert [failure.name for failure in report.failures] == ["cut.bin"]
    assert "too large" in report.failures[0].reason  # EFBIG, from the write of the rest
    assert os.listdir(tmp_path / "dst") == []


def test_transfer_errors_read_as_advice(s3_client, bucket: str) -> None:
    from data_platform.s3sync.inventory import describe_transfer_error
    from data_platform.s3sync.remote import Remote, RemoteError

    s3_client.put_object(Bucket=bucket, Key="a", Body=b"a")
    remote = Remote(s3_client, bucket)
    with pytest.raises(RemoteError) as changed:
        remote.get("a", "0123", 0, 1, whole=True)
    assert describe_transfer_error(changed.value).startswith(
        "PreconditionFailed: the object changed"
    )
    with pytest.raises(RemoteError) as gone:
        remote.get("missing", "0123", 0, 1, whole=True)
    assert "deleted since it was listed" in describe_transfer_error(gone.value)
