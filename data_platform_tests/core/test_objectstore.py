"""One contract for both object stores: S3 (a real S3 server over HTTP) and a local folder."""

from __future__ import annotations

import copy
import hashlib
import io
import multiprocessing
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from data_platform.core.objectstore import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    PreconditionFailed,
    S3ObjectStore,
    object_store_from_url,
)

S3_PREFIX = "tenant/area"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    s3_client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("bucket")
    return S3ObjectStore(s3_client, bucket, prefix=S3_PREFIX)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def race(workers: int, attempt: Callable[[int], str]) -> tuple[list[str], list[Exception]]:
    """Run `attempt(i)` in `workers` threads released together; return (etags, errors)."""
    barrier = threading.Barrier(workers)

    def run(i: int) -> str | Exception:
        barrier.wait()
        try:
            return attempt(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(workers) as pool:
        outcomes = list(pool.map(run, range(workers)))
    return (
        [o for o in outcomes if isinstance(o, str)],
        [o for o in outcomes if isinstance(o, Exception)],
    )


def test_round_trip_with_korean_key_and_metadata(store: ObjectStore) -> None:
    key = "raw/서울특별시/강남구/파일.csv"
    data = "지역,값\n서울,1\n".encode()
    long_value = "서울특별시 강남구 " * 20
    metadata = {"Sample-Count": "42", "region": "서울특별시", "note": long_value}

    etag = store.put(key, data, metadata)

    assert etag == md5(data)
    info = store.head(key)
    assert (info.key, info.size, info.etag) == (key, len(data), etag)
    assert dict(info.metadata) == {
        "sample-count": "42",
        "region": "서울특별시",
        "note": long_value,
    }
    assert info.last_modified is not None and info.last_modified.tzinfo is not None
    assert store.exists(key)
    assert store.get(key) == data
    with store.open(key) as stream:
        assert stream.read(3) == data[:3]
        assert stream.read() == data[3:]

    store.delete(key)
    store.delete(key)  # idempotent
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound, match=re.escape(key)):
        store.get(key)
    with pytest.raises(ObjectNotFound, match=re.escape(key)):
        store.head(key)
    assert list(store.list()) == []


def test_put_streams_a_binary_file_and_overwrites(store: ObjectStore) -> None:
    first = b"x" * 3_000_000
    assert store.put("big.bin", io.BytesIO(first)) == md5(first)
    assert store.put("big.bin", b"small", {"v": "2"}) == md5(b"small")
    assert store.get("big.bin") == b"small"
    assert dict(store.head("big.bin").metadata) == {"v": "2"}

    # A pipe cannot seek; the S3 store spools it, the local store streams it.
    read_end, write_end = os.pipe()
    os.write(write_end, b"piped " * 1000)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert store.put("piped.txt", pipe) == md5(b"piped " * 1000)
    assert store.get("piped.txt") == b"piped " * 1000


def test_list_paginates_in_key_order_with_prefix_and_start_after(store: ObjectStore) -> None:
    many = [f"many/{i:04d}" for i in range(1100)]
    tricky = ["a-b", "a/b", "a/c/d", "a0", "ab", "manz"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: store.put(key, key.encode()), many + tricky))

    listed = list(store.list())
    keys = [info.key for info in listed]
    # S3 and the local store list in byte order; SeaweedFS lists folder by folder ("a/b" before
    # "a-b"). Either way the order is total and `start_after` follows it.
    assert keys in (sorted(many + tricky), sorted(many + tricky, key=lambda k: k.split("/")))
    by_key = {info.key: info for info in listed}
    assert by_key["many/0007"].etag == md5(b"many/0007")
    assert by_key["many/0007"].size == len("many/0007")

    def after(start: str) -> list[str]:
        return [key for key in keys if keys.index(key) > keys.index(start)]

    assert [i.key for i in store.list("many/")] == many
    assert [i.key for i in store.list("many/", start_after="many/0549")] == many[550:]
    assert [i.key for i in store.list("ma")] == [*many, "manz"]
    assert [i.key for i in store.list("a")] == [k for k in keys if k.startswith("a")]
    assert [i.key for i in store.list("a/")] == ["a/b", "a/c/d"]
    assert [i.key for i in store.list(start_after="a/b")] == after("a/b")
    assert [i.key for i in store.list(start_after="a-b")] == after("a-b")
    assert [i.key for i in store.list(start_after="a/")][:2] == ["a/b", "a/c/d"]
    # A StartAfter naming a folder still lists the keys inside it (SeaweedFS skips them).
    assert sorted(i.key for i in store.list(start_after="a")) == sorted(keys)
    assert [i.key for i in store.list("a/", start_after="a/c")] == ["a/c/d"]
    assert [i.key for i in store.list("many/", start_after="many")] == many
    assert [i.key for i in store.list("a/c/", start_after="a")] == ["a/c/d"]
    assert [i.key for i in store.list(start_after="many/1099")] == ["manz"]
    assert list(store.list("nothing/")) == []


def test_put_if_absent_refuses_the_second_write(store: ObjectStore) -> None:
    etag = store.put_if_absent("manifest.json", b"v1", {"writer": "a"})
    with pytest.raises(PreconditionFailed):
        store.put_if_absent("manifest.json", b"v2", {"writer": "b"})
    info = store.head("manifest.json")
    assert (store.get("manifest.json"), info.etag, dict(info.metadata)) == (
        b"v1",
        etag,
        {"writer": "a"},
    )


def test_put_if_match_needs_the_current_etag(store: ObjectStore) -> None:
    stale = store.put("manifest.json", b"v1")
    fresh = store.put("manifest.json", b"v2")

    with pytest.raises(PreconditionFailed):
        store.put_if_match("manifest.json", b"v3", stale)
    assert store.get("manifest.json") == b"v2"

    assert store.put_if_match("manifest.json", b"v3", f'"{fresh}"', {"v": "3"}) == md5(b"v3")
    assert store.get("manifest.json") == b"v3"
    assert dict(store.head("manifest.json").metadata) == {"v": "3"}

    with pytest.raises(PreconditionFailed):
        store.put_if_match("missing.json", b"v1", fresh)
    assert not store.exists("missing.json")


def test_racing_put_if_absent_has_exactly_one_winner(store: ObjectStore) -> None:
    winners, errors = race(8, lambda i: store.put_if_absent("lock", f"writer {i}".encode()))
    assert len(winners) == 1
    assert len(errors) == 7 and all(isinstance(e, PreconditionFailed) for e in errors)
    assert md5(store.get("lock")) == winners[0]


def test_racing_put_if_match_has_exactly_one_winner(store: ObjectStore) -> None:
    start = store.put("manifest.json", b"generation 0")
    winners, errors = race(
        8, lambda i: store.put_if_match("manifest.json", f"writer {i}".encode(), start)
    )
    assert len(winners) == 1
    assert len(errors) == 7 and all(isinstance(e, PreconditionFailed) for e in errors)
    assert store.head("manifest.json").etag == winners[0]


class _BreaksHalfWay(io.RawIOBase):
    """Passes `limit` bytes through, then fails like a dropped connection."""

    def __init__(self, inner: io.BufferedIOBase, limit: int) -> None:
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            raise ConnectionResetError("simulated: connection dropped mid-download")
        count = self._inner.readinto(memoryview(buffer)[: self._left])
        self._left -= count
        return count

    def close(self) -> None:
        self._inner.close()
        super().close()


def _breaking_copy(store: ObjectStore, limit: int) -> ObjectStore:
    class Breaking(type(store)):  # type: ignore[misc]
        def open(self, key: str) -> ObjectReader:
            real = super().open(key)
            return ObjectReader(_BreaksHalfWay(real, limit), real.info)

    broken = copy.copy(store)
    broken.__class__ = Breaking
    return broken


def test_download_is_atomic(store: ObjectStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 12_000  # ~3 MB: several read chunks
    etag = store.put("dl/data.bin", data, {"k": "v"})
    target = tmp_path / "downloads" / "data.bin"

    info = store.download("dl/data.bin", target)
    assert target.read_bytes() == data
    assert (info.etag, info.size, dict(info.metadata)) == (etag, len(data), {"k": "v"})

    target.write_bytes(b"previous version")
    with pytest.raises(ConnectionResetError):
        _breaking_copy(store, limit=len(data) // 2).download("dl/data.bin", target)
    assert target.read_bytes() == b"previous version"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]

    fresh_target = tmp_path / "fresh" / "data.bin"
    with pytest.raises(ConnectionResetError):
        _breaking_copy(store, limit=1000).download("dl/data.bin", fresh_target)
    assert list(fresh_target.parent.iterdir()) == []

    with pytest.raises(ObjectNotFound):
        store.download("dl/missing.bin", fresh_target)
    assert list(fresh_target.parent.iterdir()) == []


def test_s3_keys_live_under_the_prefix(s3_client, bucket: str) -> None:
    store = S3ObjectStore(s3_client, bucket, prefix=f"/{S3_PREFIX}/")
    store.put("x/y.txt", b"hello")
    assert (
        s3_client.get_object(Bucket=bucket, Key=f"{S3_PREFIX}/x/y.txt")["Body"].read() == b"hello"
    )
    s3_client.put_object(Bucket=bucket, Key="outside.txt", Body=b"not ours")
    assert [i.key for i in store.list()] == ["x/y.txt"]


def test_s3_missing_bucket_is_a_clear_error(s3_client) -> None:
    store = S3ObjectStore(s3_client, "no-such-bucket-for-objectstore")
    for action in (
        lambda: store.get("k"),
        lambda: store.put("k", b"v"),
        lambda: store.put_if_absent("k", b"v"),
        lambda: list(store.list()),
    ):
        with pytest.raises(ObjectStoreError, match="no-such-bucket-for-objectstore") as caught:
            action()
        assert not isinstance(caught.value, ObjectNotFound)
        assert "does not exist" in str(caught.value)


def test_local_missing_root_reads_as_empty_without_creating_it(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "absent")
    with pytest.raises(ObjectNotFound):
        store.get("k")
    assert not store.exists("k")
    assert list(store.list()) == []
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    "key",
    ["../escape", "/etc/passwd", "a//b", "a/./b", "a/../../b", "trailing/", "", ".objectstore/x"],
)
def test_local_rejects_keys_that_escape_the_root(tmp_path: Path, key: str) -> None:
    store = LocalObjectStore(tmp_path / "store")
    with pytest.raises(ValueError, match="invalid object key"):
        store.put(key, b"x")
    assert not (tmp_path / "escape").exists()


def test_local_layout_is_plain_files_and_survives_outside_edits(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put("year=2024/month=05/a.csv", b"one", {"rows": "1"})
    assert (tmp_path / "year=2024" / "month=05" / "a.csv").read_bytes() == b"one"

    # Another tool rewrites the file and drops a new one: etags follow the content, metadata
    # (which would no longer describe it) is dropped.
    (tmp_path / "year=2024" / "month=05" / "a.csv").write_bytes(b"edited")
    (tmp_path / "year=2024" / "b.csv").write_bytes(b"foreign")
    assert store.head("year=2024/month=05/a.csv").etag == md5(b"edited")
    assert dict(store.head("year=2024/month=05/a.csv").metadata) == {}
    assert [(i.key, i.etag) for i in store.list()] == [
        ("year=2024/b.csv", md5(b"foreign")),
        ("year=2024/month=05/a.csv", md5(b"edited")),
    ]

    with pytest.raises(ObjectStoreError, match="a parent of it is an object"):
        store.put("year=2024/b.csv/nested", b"x")
    with pytest.raises(ObjectStoreError, match="a folder has that name"):
        store.put("year=2024/month=05", b"x")
    assert store.get("year=2024/b.csv") == b"foreign"

    store.delete("year=2024/month=05/a.csv")
    assert not (tmp_path / "year=2024" / "month=05").exists()  # emptied folders are pruned


def _claim_in_process(root: str, barrier: threading.Barrier, index: int) -> None:
    store = LocalObjectStore(root)
    barrier.wait()
    try:
        store.put_if_absent("claim", f"process {index}".encode())
    except PreconditionFailed:
        raise SystemExit(3) from None


def test_local_put_if_absent_is_exclusive_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    processes = [
        context.Process(target=_claim_in_process, args=(str(tmp_path), barrier, i))
        for i in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    codes = [process.exitcode for process in processes]
    assert sorted(codes) == [0, 3, 3, 3]
    winner = codes.index(0)
    assert LocalObjectStore(tmp_path).get("claim") == f"process {winner}".encode()


def test_object_store_from_url(s3_client, tmp_path: Path) -> None:
    s3 = object_store_from_url("s3://my-bucket/raw/data", client_factory=lambda: s3_client)
    assert isinstance(s3, S3ObjectStore)
    assert (s3.bucket, s3.prefix) == ("my-bucket", "raw/data/")
    local = object_store_from_url(f"file://{tmp_path}/a%20b")
    assert isinstance(local, LocalObjectStore) and local.root == tmp_path / "a b"
    plain = object_store_from_url(str(tmp_path))
    assert isinstance(plain, LocalObjectStore) and plain.root == tmp_path
    assert isinstance(plain, ObjectStore)
    with pytest.raises(ValueError, match="client_factory"):
        object_store_from_url("s3://my-bucket/raw")
    with pytest.raises(ValueError, match="unsupported"):
        object_store_from_url("ftp://host/path")


def test_s3_metadata_values_are_sent_unaltered_or_encoded(s3_client, bucket: str) -> None:
    """Whitespace inside a value is kept; values HTTP headers cannot carry (non-Latin-1, tabs,
    edge spaces) travel RFC 2047-encoded instead of raising UnicodeEncodeError."""
    store = S3ObjectStore(s3_client, bucket)
    metadata = {
        "note": "two  spaces   three",
        "tabbed": "a\tb",
        "padded": " edge ",
        "ko": "강남구 ✓ 😀",
        "md5": "0" * 32,
        "sample-count": "12",
    }
    store.put("m.txt", b"x", metadata)
    assert dict(store.head("m.txt").metadata) == metadata
    with store.open("m.txt") as stream:
        assert dict(stream.info.metadata) == metadata
    raw = s3_client.head_object(Bucket=bucket, Key="m.txt")["Metadata"]
    assert raw["note"] == "two  spaces   three"  # sent as is, not folded or trimmed


def test_s3_store_signs_with_credentials_it_asks_for_again(s3_endpoint: str, bucket: str) -> None:
    """Credentials close to expiry are asked for again before a request: a refresh reaches the
    requests (here the second answer is a revoked key, which the server must see)."""
    from datetime import UTC, datetime, timedelta

    from data_platform.core.aws import S3Connection

    answers: list[str] = []

    def provide() -> dict:
        answers.append("testing" if not answers else "revoked")
        return {
            "access_key_id": "testing",
            "secret_access_key": answers[-1],
            "token": None,
            "expires_at": datetime.now(UTC) + timedelta(seconds=30),
        }

    store = S3ObjectStore(S3Connection("us-east-1", provide, s3_endpoint), bucket)
    store.put("a.txt", b"1")
    with pytest.raises(ObjectStoreError, match=r"SignatureDoesNotMatch|AccessDenied|403"):
        store.put("b.txt", b"2")
    assert answers == ["testing", "revoked"]
