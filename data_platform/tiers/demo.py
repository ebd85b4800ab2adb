"""Demo step: three hours of synthetic 10-minute raw snapshots for aws in S3, the hot and warm
tiers materialized through Dagster, then a point-in-time state and the objects it was read from."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

from data_platform.demo import DemoContext, DemoFailure, checks_passed, run_job

PROVIDER = "aws"
DAY = datetime(2026, 1, 23, tzinfo=UTC)
SLOTS = 18
KEYS = 300


def raw_snapshots(seed: int = 3) -> dict[datetime, bytes]:
    """Parquet snapshots of KEYS instance types; each slot changes ~30 scores and drops a few."""
    import polars as pl

    rng = random.Random(seed)
    scores = {k: rng.randint(1, 3) for k in range(KEYS)}
    snapshots = {}
    for index in range(SLOTS):
        for _ in range(30):
            scores[rng.randrange(KEYS)] = rng.randint(1, 3)
        present = [k for k in range(KEYS) if rng.random() > 0.01]
        frame = pl.DataFrame(
            {
                "InstanceType": [f"m{k // 6}.{k % 6}xlarge" for k in present],
                "Region": ["us-east-1"] * len(present),
                "AZ": [f"use1-az{k % 3 + 1}" for k in present],
                "SPS": [scores[k] for k in present],
            }
        )
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        snapshots[DAY + timedelta(minutes=10 * index)] = buffer.getvalue()
    return snapshots


def run_demo(ctx: DemoContext) -> None:
    import polars as pl

    from data_platform.core.objectstore import object_store_from_url
    from data_platform.tiers.defs import HOT_JOB, WARM_JOB, hot_key, warm_key
    from data_platform.tiers.ingest import raw_key
    from data_platform.tiers.reader import read_state_with_stats

    client = ctx.s3_client()
    # Where the code location's `raw_store` and `tiers_store` point (DATA_PLATFORM_RAW_URL and
    # DATA_PLATFORM_TIERS_URL), so Dagit shows and reruns the same data.
    raw_url, lake_url = ctx.env["DATA_PLATFORM_RAW_URL"], ctx.env["DATA_PLATFORM_TIERS_URL"]
    raw = object_store_from_url(raw_url, client_factory=lambda: client)
    for slot, data in raw_snapshots().items():
        raw.put(raw_key(PROVIDER, slot), data)
    ctx.say(f"put {SLOTS} raw snapshots under {raw_url}/rawdata/{PROVIDER}/{DAY:%Y/%m/%d}/")

    day = f"{DAY:%Y-%m-%d}"
    hot = run_job(HOT_JOB, [hot_key(PROVIDER)], partition_key=day)
    if not checks_passed(hot):
        raise DemoFailure(f"job {HOT_JOB} [{day}] failed")
    # The warm tier follows the hot day as platform_automation runs it (after_upstream_update);
    # run here once the hot day is in, it is handled, so the daemon's first tick requests nothing.
    month = f"{DAY:%Y-%m}-01"
    warm = run_job(WARM_JOB, [warm_key(PROVIDER)], partition_key=month)
    if not checks_passed(warm):
        raise DemoFailure(f"job {WARM_JOB} [{month}] failed")
    compacted = next(
        event.materialization.metadata["hot_files_compacted"].value
        for event in warm.get_asset_materialization_events()
    )
    ctx.say(
        f"job {HOT_JOB} [{day}], then {WARM_JOB} [{month}]: "
        f"{compacted} hot files compacted, checks passed"
    )

    endpoint = ["--endpoint-url", ctx.s3_endpoint]
    ctx.run_cli("tiers", "manifest", "--store", lake_url, "--month", "2026-01", *endpoint)
    at = (DAY + timedelta(hours=2, minutes=5)).isoformat()
    output = str(ctx.workdir / "tiers_state.csv")
    ctx.run_cli("tiers", "state", "--store", lake_url, "--at", at, "--output", output, *endpoint)
    lake = object_store_from_url(lake_url, client_factory=lambda: client)
    state, stats = read_state_with_stats("aws", datetime.fromisoformat(at), store=lake)
    if state.height != pl.read_csv(output).height or len(stats.objects) > 3 + 7 * 2:
        raise DemoFailure(
            f"unexpected point-in-time read: {state.height} rows from {len(stats.objects)} objects"
        )
    ctx.say(f"verified: {state.height} live rows at {at} read from {len(stats.objects)} objects")
