"""One silver sensor tick over a bucket of 100,000 raw keys that finds 100 new ones.

Goal: the tick that finds the new keys takes <= 2 s against the local S3 API server (moto, over
HTTP), i.e. bounded work per tick instead of listing the whole prefix. The tick is the whole
sensor evaluation: Dagster context, resources, S3 listing, discovery, run requests.

Layout: 100 months (2016-01..2024-04) x 250 areas x 4 files = 100,000 keys. The cursor comes from
discovery having listed all of them. Then 100 new keys arrive: 10 new areas in the newest month
(sorting *before* keys already seen) and 15 areas of a new month. S3 requests are counted with a
botocore `before-send` hook on the store's client.

moto takes one PUT at a time (~300-500/s here), so seeding 100,000 keys takes minutes; it uses
plain HTTP PUTs from a thread pool (moto does not verify signatures), the fastest way found.

Run: uv run python benchmarks/sensor_tick.py [--keys 100000] [--new 100]
"""

from __future__ import annotations

import argparse
import http.client
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

GOAL_SECONDS = 2.0
BUCKET = "sensor-bench"
RAW_PREFIX = "raw"
FILES_PER_AREA = 4
AREAS_PER_MONTH = 250
# moto reads the service from the signature's scope and does not verify it; unsigned PUTs get
# 403 from moto at times.
SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
}
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


def seed(port: int, keys: list[str], threads: int = 8) -> float:
    """PUT every key (1-byte body) over keep-alive connections; returns seconds taken."""

    def worker(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for key in chunk:
            conn.request("PUT", f"/{BUCKET}/{quote(key, safe='/~')}", body=b"x", headers=SIGNED)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"PUT {key} answered {response.status}")
        conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [keys[i::threads] for i in range(threads)]))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    args = parser.parse_args()

    # Dummy credentials and empty config files: nothing from the real AWS setup leaks in.
    aws_dir = tempfile.mkdtemp(prefix="sensor-bench-aws-")
    for name in ("config", "credentials"):
        Path(aws_dir, name).write_text("")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(Path(aws_dir, "config")),
        AWS_SHARED_CREDENTIALS_FILE=str(Path(aws_dir, "credentials")),
    )
    os.environ.pop("AWS_PROFILE", None)

    from data_platform.devstack import start_s3_server

    server = start_s3_server()
    try:
        run(server.endpoint_url, server.port, args.keys, args.new)
    finally:
        server.stop()
        for name in ("config", "credentials"):
            Path(aws_dir, name).unlink()
        os.rmdir(aws_dir)


def run(endpoint: str, port: int, total: int, new: int) -> None:
    import dagster as dg

    from data_platform.core.objectstore_s3 import S3ObjectStore
    from data_platform.resources import AwsSessionResource, ObjectStoreResource
    from data_platform.silver import defs as silver
    from data_platform.silver.discovery import DiscoveryCursor, DiscoveryLimits, discover
    from data_platform.silver.discovery_state import store_cursor
    from data_platform.silver.presets import list_presets

    preset = list_presets()[0]
    dataset = preset.dataset
    requests = {"count": 0}

    class CountingStore(ObjectStoreResource):
        """The production resource, with a request counter on the client it builds."""

        def store(self) -> S3ObjectStore:
            store = super().store()
            store._client.meta.events.register(  # benchmark-only peek at the client
                "before-send.s3", lambda **_: requests.__setitem__("count", requests["count"] + 1)
            )
            return store

    resource = CountingStore(
        url=f"s3://{BUCKET}/{RAW_PREFIX}",
        aws=AwsSessionResource(endpoint_url=endpoint, region="us-east-1"),
    )
    store = resource.store()
    store._client.create_bucket(Bucket=BUCKET)

    keys = existing_keys(dataset, total)
    seconds = seed(port, keys)
    print(f"seeded {len(keys):,} keys in {seconds:.1f} s ({len(keys) / seconds:.0f} PUT/s)")

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
    seed(port, added)

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
