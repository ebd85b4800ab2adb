"""Discovery of new, changed and deleted raw partitions against the moto S3 server."""

from __future__ import annotations

import pytest

from data_platform.core.objectstore_s3 import S3ObjectStore
from data_platform.core.partitions import SnapshotKey
from data_platform.silver.discovery import (
    DiscoveryCursor,
    DiscoveryLimits,
    discover,
    list_partition_files,
    parse_raw_key,
)
from data_platform.silver.discovery_state import load_cursor, store_cursor

RAW = "raw"


def key(dataset: str, year: int, month: int, region: str, sigungu: str, name: str) -> str:
    return f"{dataset}/year={year}/month={month:02d}/region={region}/sigungu={sigungu}/{name}"


@pytest.fixture
def store(s3_client, bucket: str) -> S3ObjectStore:
    return S3ObjectStore(s3_client, bucket, RAW)


def put(store: S3ObjectStore, *keys: str, body: bytes = b"a,b\n1,2\n") -> None:
    for k in keys:
        store.put(k, body)


def touched(result) -> list[tuple[str, str]]:
    return sorted((c.partition.dataset, c.partition.path) for c in result.changes)


def test_same_files_are_requested_once(store: S3ObjectStore) -> None:
    put(
        store,
        key("apt", 2024, 4, "서울", "강남구", "a.csv"),
        key("apt", 2024, 4, "서울", "강남구", "b.csv"),
        key("apt", 2024, 5, "부산", "해운대구", "a.parquet"),
    )
    first = discover(store, ["apt"], DiscoveryCursor())
    assert touched(first) == [
        ("apt", "year=2024/month=04/region=서울/sigungu=강남구"),
        ("apt", "year=2024/month=05/region=부산/sigungu=해운대구"),
    ]
    assert all(c.previous is None for c in first.changes)
    assert [len(c.partition.files) for c in first.changes] == [2, 1]
    assert len({c.run_key for c in first.changes}) == 2
    assert "|" not in first.changes[0].partition.snapshot.area_key

    second = discover(store, ["apt"], first.cursor)
    assert second.changes == [] and second.removed == []
    assert second.cursor.fingerprints == first.cursor.fingerprints


def test_changed_etag_and_new_file_in_an_old_partition_are_found(store: S3ObjectStore) -> None:
    old = key("apt", 2023, 1, "서울", "종로구", "a.csv")
    put(store, old, key("apt", 2024, 5, "서울", "종로구", "a.csv"))
    cursor = discover(store, ["apt"], DiscoveryCursor()).cursor

    put(store, old, body=b"a,b\n9,9\n")  # same key, new etag, far behind the newest key
    changed = discover(store, ["apt"], cursor)
    assert touched(changed) == [("apt", "year=2023/month=01/region=서울/sigungu=종로구")]
    change = changed.changes[0]
    assert change.previous == cursor.fingerprints["apt"][change.partition.path]
    assert change.run_key.endswith(f"{change.partition.fingerprint}:after:{change.previous}")

    put(store, key("apt", 2023, 1, "서울", "종로구", "0-first.csv"))
    added = discover(store, ["apt"], changed.cursor)
    assert touched(added) == touched(changed)
    assert [len(c.partition.files) for c in added.changes] == [2]
    assert discover(store, ["apt"], added.cursor).changes == []


def test_reverting_to_earlier_files_loads_again(store: S3ObjectStore) -> None:
    k = key("apt", 2024, 5, "서울", "중구", "a.csv")
    put(store, k, body=b"v1\n")
    a = discover(store, ["apt"], DiscoveryCursor())
    put(store, k, body=b"v2\n")
    b = discover(store, ["apt"], a.cursor)
    put(store, k, body=b"v1\n")
    back = discover(store, ["apt"], b.cursor)
    keys = [r.changes[0].run_key for r in (a, b, back)]
    assert len(set(keys)) == 3
    assert back.changes[0].partition.fingerprint == a.changes[0].partition.fingerprint


def test_new_partitions_and_deleted_objects(store: S3ObjectStore) -> None:
    gone = key("apt", 2024, 5, "서울", "노원구", "a.csv")
    half = [key("apt", 2024, 5, "서울", "마포구", n) for n in ("a.csv", "b.csv")]
    put(store, gone, *half)
    cursor = discover(store, ["apt"], DiscoveryCursor()).cursor

    store.delete(gone)
    store.delete(half[1])
    put(store, key("apt", 2024, 6, "대구", "수성구", "a.csv"))
    result = discover(store, ["apt"], cursor)
    assert touched(result) == [
        ("apt", "year=2024/month=05/region=서울/sigungu=마포구"),
        ("apt", "year=2024/month=06/region=대구/sigungu=수성구"),
    ]
    assert result.removed == [("apt", "year=2024/month=05/region=서울/sigungu=노원구")]
    assert "year=2024/month=05/region=서울/sigungu=노원구" not in result.cursor.fingerprints["apt"]
    assert discover(store, ["apt"], result.cursor).changes == []


def test_bounded_work_continues_on_the_next_tick(store: S3ObjectStore) -> None:
    areas = [f"구{i:02d}" for i in range(7)]
    put(store, *[key("apt", 2024, 5, "서울", a, f"{n}.csv") for a in areas for n in "ab"])
    limits = DiscoveryLimits(frontier_keys=3, sweep_keys=1, max_changes=100)
    cursor, seen, ticks = DiscoveryCursor(), [], 0
    while ticks < 20:
        result = discover(store, ["apt"], cursor, limits)
        ticks += 1
        assert result.keys_listed <= limits.frontier_keys + 2 + limits.sweep_keys + 2
        seen += touched(result)
        cursor = result.cursor
        if not cursor.frontier_resume:
            break
    assert ticks > 2
    assert sorted(seen) == sorted(set(seen))  # no partition requested twice
    assert [p for _, p in sorted(seen)] == [
        f"year=2024/month=05/region=서울/sigungu={a}" for a in areas
    ]

    capped = discover(store, ["apt"], DiscoveryCursor(), DiscoveryLimits(max_changes=3))
    assert len(capped.changes) == 3 and capped.cursor.frontier_resume
    rest = discover(store, ["apt"], capped.cursor, DiscoveryLimits(max_changes=3))
    assert not set(touched(rest)) & set(touched(capped))


def test_sweep_finds_late_files_outside_the_recent_window(store: S3ObjectStore) -> None:
    put(store, *[key("apt", 2020 + y, 1, "서울", "중구", "a.csv") for y in range(5)])
    limits = DiscoveryLimits(frontier_keys=100, sweep_keys=2)
    cursor = discover(store, ["apt"], DiscoveryCursor(), limits).cursor
    assert cursor.sweep_resume is not None  # the first tick swept 2020 already
    late = key("apt", 2020, 1, "서울", "중구", "late.csv")
    put(store, late)
    found_after = None
    for tick in range(1, 8):
        result = discover(store, ["apt"], cursor, limits)
        cursor = result.cursor
        assert result.keys_listed <= 1 + 2 + 1  # frontier month + sweep window + one over
        if result.changes:
            assert [f.key for f in result.changes[0].partition.files][-1] == late
            found_after = tick
            break
    assert found_after is not None and found_after > 1  # after the sweep wrapped around
    assert cursor.sweeps_completed == 1


def test_layout_problems_are_reported_and_skipped(store: S3ObjectStore) -> None:
    good = key("apt", 2024, 5, "서울", "중구", "a.csv")
    bad = {
        "apt/year=2024/month=5/region=서울/sigungu=중구/a.csv": "2-digit month",
        "apt/year=24/month=05/region=서울/sigungu=중구/a.csv": "4-digit year",
        "apt/year=2024/month=05/sigungu=중구/a.csv": "6 parts",
        "apt/year=2024/month=05/region=서울/sigungu=중구/notes.txt": ".parquet",
        "apt/year=2024/month=05/region=서울/sigungu=중구/sub/a.csv": "6 parts",
        "apt/year=1999/month=01/region=서울/sigungu=중구/a.csv": "outside",
    }
    odd_but_valid = key("apt", 2024, 5, "서울", "a,b[1]...", "a.csv")  # escaped in area keys
    put(store, good, odd_but_valid, key("apt", 2024, 5, "서울", "중구", "_SUCCESS"), *bad)
    result = discover(store, ["apt"], DiscoveryCursor(), month_range=("2015-01-01", "2030-12-01"))
    assert touched(result) == [
        ("apt", "year=2024/month=05/region=서울/sigungu=a,b[1]..."),
        ("apt", "year=2024/month=05/region=서울/sigungu=중구"),
    ]
    assert [f.key for f in result.changes[1].partition.files] == [good]
    problems = {p.key: p.rule for p in result.problems}
    assert set(problems) == set(bad)
    for bad_key, words in bad.items():
        assert words in problems[bad_key], (bad_key, problems[bad_key])
    assert result.new_problems == result.problems  # each key once, though listed twice
    again = discover(store, ["apt"], result.cursor, month_range=("2015-01-01", "2030-12-01"))
    assert len(again.problems) == len(bad) and again.new_problems == []  # told once


def test_datasets_are_separate_and_unknown_folders_ignored(store: S3ObjectStore) -> None:
    put(
        store,
        key("apt", 2024, 5, "서울", "중구", "a.csv"),
        key("land", 2024, 5, "서울", "중구", "a.csv"),
    )
    put(store, key("other", 2024, 5, "서울", "중구", "a.csv"))
    result = discover(store, ["land", "apt"], DiscoveryCursor())
    assert [ds for ds, _ in touched(result)] == ["apt", "land"]
    assert len({c.run_key for c in result.changes}) == 2
    again = discover(store, ["apt"], result.cursor)
    assert set(again.cursor.fingerprints) == {"apt"}


def test_list_partition_files_matches_the_sensor(store: S3ObjectStore) -> None:
    files = [key("apt", 2024, 5, "서울", "중구", n) for n in ("b.csv", "a.parquet", "_SUCCESS")]
    put(store, *files, key("apt", 2024, 5, "서울", "중구2", "a.csv"))
    snapshot = SnapshotKey(2024, 5, "서울", "중구")
    partition = list_partition_files(store, "apt", snapshot)
    assert [f.key for f in partition.files] == sorted(files[:2])
    sensed = discover(store, ["apt"], DiscoveryCursor()).changes
    assert partition.fingerprint in {c.partition.fingerprint for c in sensed}
    assert parse_raw_key("apt", files[2]) is None


def test_frontier_finds_new_year_and_late_area_of_the_newest_month(store: S3ObjectStore) -> None:
    put(
        store, *[key("apt", 2019 + y, m, "서울", "중구", "a.csv") for y in range(4) for m in (1, 6)]
    )
    put(store, key("apt", 2024, 12, "서울", "중구", "a.csv"))
    limits = DiscoveryLimits(frontier_keys=100, sweep_keys=1)
    cursor = discover(store, ["apt"], DiscoveryCursor(), DiscoveryLimits()).cursor
    cursor = discover(store, ["apt"], cursor, limits).cursor  # sweep sits in 2019 now
    put(
        store,
        key("apt", 2024, 12, "부산", "중구", "a.csv"),
        key("apt", 2025, 1, "서울", "중구", "a.csv"),
    )
    result = discover(store, ["apt"], cursor, limits)
    assert touched(result) == [
        ("apt", "year=2024/month=12/region=부산/sigungu=중구"),
        ("apt", "year=2025/month=01/region=서울/sigungu=중구"),
    ]
    # the frontier listed December 2024, 2025 and the empty 2026; the sweep a couple of keys
    assert result.keys_listed <= 3 + 3
    assert discover(store, ["apt"], result.cursor, limits).changes == []


def test_state_store_keeps_the_committed_cursor_when_a_tick_fails(store: S3ObjectStore) -> None:
    import dagster as dg

    values = dg.DagsterInstance.ephemeral().daemon_cursor_storage
    put(store, key("apt", 2024, 5, "서울", "중구", "a.csv"))
    first = discover(store, ["apt"], DiscoveryCursor())
    committed = store_cursor(first.cursor, None, values, "s")
    assert len(committed) < 500 and "fingerprints" not in committed
    assert load_cursor(committed, values, "s") == first.cursor

    put(store, key("apt", 2024, 5, "서울", "종로구", "a.csv"))
    changed = discover(store, ["apt"], load_cursor(committed, values, "s"))
    store_cursor(changed.cursor, committed, values, "s")  # this tick's cursor is never committed
    retried = discover(store, ["apt"], load_cursor(committed, values, "s"))
    assert touched(retried) == touched(changed)  # the change is found again, not lost
    pointer = store_cursor(retried.cursor, committed, values, "s")
    idle = discover(store, ["apt"], load_cursor(pointer, values, "s"))
    assert idle.changes == []
    assert store_cursor(idle.cursor, pointer, values, "s").split('"slot": ')[1][:3] == '"b"'

    with pytest.raises(ValueError, match="reset the sensor"):
        load_cursor(pointer, values, "other-sensor")  # no stored state under that name
    with pytest.raises(ValueError, match="reset the sensor"):
        load_cursor("silver-discovery-pointer-v1:{nope", values, "s")
