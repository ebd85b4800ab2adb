"""One silver sensor tick over a bucket of 100,000 raw keys that finds 100 new ones.

Goal: the tick that finds the new keys takes <= 2 s against the dev stack's S3 server (SeaweedFS
over HTTP, checking credentials and signatures), i.e. bounded work per tick instead of listing
the whole prefix. The tick is the whole sensor evaluation: Dagster context, resources, S3
listing, discovery, run requests.

Layout: 100 months (2016-01..2024-04) x 250 areas x 4 files = 100,000 keys. The cursor comes from
discovery having listed all of them. Then 100 new keys arrive: 10 new areas in the newest month
(sorting *before* keys already seen) and 15 areas of a new month. S3 requests are counted by
wrapping obstore's calls (the store's data plane); a listing counts one request per 1,000-key
page.

Seeding is signed (SeaweedFS refuses unsigned PUTs): obstore's async PUTs, --concurrency at a
time over one connection pool.

    uv run python benchmarks/sensor_tick.py                    # 100,000 keys, 100 new
    uv run python benchmarks/sensor_tick.py --keys 20000 --new 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

GOAL_SECONDS = 2.0
BUCKET = "sensor-bench"
RAW_PREFIX = "raw"
FILES_PER_AREA = 4
AREAS_PER_MONTH = 250
REGIONS = ["서울특별시", "부산광역시", "대구광역시", "인천광역시", "경기도"]


def area(index: int) -> tuple[str, str]:
    return REGIONS[index % len(REGIONS)], f"구{index:03d}"


def raw_key(dataset: str, year: int, month: int, region: str, sigungu: str, name: str) -> str:
    return (
        f"{RAW_PREFIX}/{dataset}/year={year}/month={month:02d}/region={region}"
        f"/sigungu={sigungu}/{name}"
    )


def existing_keys(dataset: str, total: int) -> list[str]:
    keys: list[str] = []
    months = -(-total // (AREAS_PER_MONTH * FILES_PER_AREA))
    for index in range(months):
        year, month = 2016 + (index // 12), index % 12 + 1
        for a in range(AREAS_PER_MONTH):
            for f in range(FILES_PER_AREA):
                keys.append(raw_key(dataset, year, month, *area(a), f"part-{f}.csv"))
    return keys[:total]


def new_keys(dataset: str, last: tuple[int, int], count: int) -> list[str]:
    """Some new areas in the newest month (their keys sort before seen ones), then a new month."""
    year, month = last
    following = (year + month // 12, month % 12 + 1)
    keys = []
    for i in range(-(-count // FILES_PER_AREA)):
        target = (
            (year, month, "강원도", f"신규{i:02d}") if i < count // 10 else (*following, *area(i))
        )
        keys += [raw_key(dataset, *target, f"part-{f}.csv") for f in range(FILES_PER_AREA)]
    return keys[:count]


def seed(bucket: Any, keys: list[str], concurrency: int) -> float:
    """PUT every key (1-byte body, signed) through obstore's async API, `concurrency` requests in
    flight; `bucket` is an obstore S3Store on the bucket. Returns the seconds taken."""
    import obstore

    async def put_all() -> None:
        pending = iter(keys)

        async def worker() -> None:
            for key in pending:  # one shared iterator: each key is taken once
                await obstore.put_async(bucket, key, b"x")

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    started = time.perf_counter()
    asyncio.run(put_all())
    return time.perf_counter() - started


@contextlib.contextmanager
def counting_requests() -> Iterator[dict[str, int]]:
    """Counts the S3 requests the object store sends through obstore (a listing: one per page
    of 1,000 keys, as the store asks for)."""
    import obstore

    counter = {"count": 0}

    def counted(call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter["count"] += 1
            return call(*args, **kwargs)

        return wrapper

    def counted_list(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for batch in original["list"](*args, **kwargs):
            counter["count"] += 1
            yield batch

    names = ("get", "head", "put", "delete", "list")
    original = {name: getattr(obstore, name) for name in names}
    for name in names:
        setattr(obstore, name, counted_list if name == "list" else counted(original[name]))
    try:
        yield counter
    finally:
        for name, call in original.items():
            setattr(obstore, name, call)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=100_000, help="raw keys already seen")
    parser.add_argument("--new", type=int, default=100, help="new keys the tick should find")
    parser.add_argument("--concurrency", type=int, default=64, help="PUTs in flight when seeding")
    args = parser.parse_args()

    # Dummy credentials and empty config files: nothing from the real AWS setup leaks in.
    aws_dir = tempfile.mkdtemp(prefix="sensor-bench-aws-")
    for name in ("config", "credentials"):
        Path(aws_dir, name).write_text("")
    from data_platform.devstack import S3_ACCESS_KEY, S3_SECRET_KEY, start_s3_server

    os.environ.update(
        AWS_ACCESS_KEY_ID=S3_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(Path(aws_dir, "config")),
        AWS_SHARED_CREDENTIALS_FILE=str(Path(aws_dir, "credentials")),
    )
    os.environ.pop("AWS_PROFILE", None)

    server = start_s3_server()
    try:
        with counting_requests() as requests:
            run(server.endpoint_url, args, requests)
    finally:
        server.stop()
        for name in ("config", "credentials"):
            Path(aws_dir, name).unlink()
        os.rmdir(aws_dir)


def run(endpoint: str, args: argparse.Namespace, requests: dict[str, int]) -> None:
    import dagster as dg

    from data_platform.core.objectstore_s3 import S3ObjectStore
    from data_platform.resources import AwsSessionResource, ObjectStoreResource
    from data_platform.silver import defs as silver
    from data_platform.silver.discovery import DiscoveryCursor, DiscoveryLimits, discover
    from data_platform.silver.discovery_state import store_cursor
    from data_platform.silver.presets import list_presets

    preset = list_presets()[0]
    dataset = preset.dataset
    total, new = args.keys, args.new
    resource = ObjectStoreResource(
        url=f"s3://{BUCKET}/{RAW_PREFIX}",
        aws=AwsSessionResource(endpoint_url=endpoint, region="us-east-1"),
    )
    resource.aws.client("s3").create_bucket(Bucket=BUCKET)
    store = resource.store()
    assert isinstance(store, S3ObjectStore)
    bucket = store.connection.obstore(BUCKET)

    keys = existing_keys(dataset, total)
    seconds = seed(bucket, keys, args.concurrency)
    print(
        f"seeded {len(keys):,} keys in {seconds:.1f} s ({len(keys) / seconds:.0f} PUT/s, "
        f"{args.concurrency} in flight)"
    )

    requests["count"] = 0
    started = time.perf_counter()
    everything = DiscoveryLimits(frontier_keys=10 * total, sweep_keys=1, max_changes=10 * total)
    first = discover(store, [dataset], DiscoveryCursor(), everything)
    seconds = time.perf_counter() - started
    print(
        f"initial discovery: {first.keys_listed:,} keys, {len(first.changes):,} partitions, "
        f"{requests['count']} S3 requests, {seconds:.1f} s (spread over ticks by the sensor)"
    )
    instance = dg.DagsterInstance.ephemeral()
    values = instance.daemon_cursor_storage
    cursor = store_cursor(first.cursor, None, values, silver.SENSOR_NAME)
    memory = values.get_cursor_values({f"data_platform/silver/discovery/{silver.SENSOR_NAME}/a"})
    print(
        f"sensor cursor: {len(cursor):,} characters; fingerprints in the key-value store: "
        f"{sum(map(len, memory.values())):,} characters for {len(first.changes):,} partitions"
    )

    last = max(first.cursor.fingerprints[dataset])
    added = new_keys(dataset, (int(last[5:9]), int(last[16:18])), new)
    seed(bucket, added, args.concurrency)

    [sensor_def] = silver.defs([preset]).sensors

    def tick(cursor: str) -> tuple[dg.SensorResult, float, int]:
        requests["count"] = 0
        started = time.perf_counter()
        with dg.build_sensor_context(
            cursor=cursor, instance=instance, resources={"raw_store": resource}
        ) as context:
            result = sensor_def(context)
        return result, time.perf_counter() - started, requests["count"]

    result, seconds, count = tick(cursor)
    observed = {k["key"] for e in result.asset_events for k in e.metadata["keys"].value}
    found = len(observed & {k[len(RAW_PREFIX) + 1 :] for k in added})
    print(
        f"tick finding the new keys: {seconds:.2f} s, {count} S3 requests, "
        f"{len(result.run_requests)} run requests, {found}/{len(added)} new keys observed"
    )
    idle, idle_seconds, idle_count = tick(result.cursor)
    print(
        f"next (idle) tick: {idle_seconds:.2f} s, {idle_count} S3 requests, "
        f"{len(idle.run_requests or [])} run requests"
    )
    print(
        f"ratio against the {GOAL_SECONDS:.0f} s goal: {seconds / GOAL_SECONDS:.2f} "
        f"({'met' if seconds <= GOAL_SECONDS and found == len(added) else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
