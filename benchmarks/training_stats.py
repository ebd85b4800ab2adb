"""Benchmark: a repeated `data-platform training stats` against one listing of the prefix.

Goal (issue 8): over 10,000 sample files on the dev stack's S3 server (SeaweedFS, checking
credentials and signatures), the second `stats` takes at most
1.5x one listing of the prefix. Both sides run as whole processes from this venv (start-up
counts): ours is `data-platform training stats --bucket B`, the anchor a Python process that only
pages through ListObjectsV2 with boto3's paginator. Rounds alternate which goes first; medians,
their ratio and the per-round ratios are printed. The first (cold) `stats` is timed once too: it
HEADs every file (sample-count metadata) and fills the shared cache.

    uv run python benchmarks/training_stats.py                 # 10,000 files, 5 rounds
    uv run python benchmarks/training_stats.py --files 500 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from data_platform import devstack

BIN = Path(sys.executable).parent
BUCKET = "bench-training"
# The credentials the dev stack's SeaweedFS accepts (it checks them and every signature).
ENV = {
    "AWS_ACCESS_KEY_ID": devstack.S3_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": devstack.S3_SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}
# The anchor: one listing of the prefix with boto3's paginator, as a whole process.
LISTING_SCRIPT = """
import sys, boto3
client = boto3.client("s3", endpoint_url=sys.argv[1])
pages = client.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=sys.argv[3])
print(sum(len(page.get("Contents", ())) for page in pages))
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds a whole process takes, and the last line it printed."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(command)}\n{result.stderr}")
    lines = result.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else ""


def seed(endpoint: str, files: int) -> int:
    """`files` sample files over 3 tasks and 30 days, 1-8 samples each; returns the samples."""
    import boto3

    from data_platform.training import S3StorageBackend

    client = boto3.client("s3", endpoint_url=endpoint, **_credentials())
    client.create_bucket(Bucket=BUCKET)
    backend = S3StorageBackend(BUCKET, "training/", client=client)
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)

    def write(index: int) -> int:
        count = 1 + index % 8
        samples = [{"input": f"문서 {index} 문단 {n}", "output": {"n": n}} for n in range(count)]
        task = ("pdf_extraction", "chat_summary", "ocr")[index % 3]
        created = start + timedelta(days=index % 30)
        backend.write_training_samples(task, samples, created_at=created)
        return count

    with ThreadPoolExecutor(16) as pool:
        return sum(pool.map(write, range(files)))


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": ENV["AWS_DEFAULT_REGION"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000, help="sample files to seed")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args()

    env = {**os.environ, **ENV}
    server = devstack.start_s3_server()
    try:
        endpoint = server.endpoint_url
        started = time.perf_counter()
        samples = seed(endpoint, args.files)
        seeding = time.perf_counter() - started
        print(f"seeded {args.files} files ({samples} samples) in {seeding:.1f} s")
        ours = [str(BIN / "data-platform"), "training", "stats", "--bucket", BUCKET,
                "--endpoint-url", endpoint]  # fmt: skip
        listing = [sys.executable, "-c", LISTING_SCRIPT, endpoint, BUCKET, "training/"]
        cold, line = timed(ours, env)
        print(f"first stats (HEAD per file, fills the cache): {cold:.2f} s  [{line}]")
        if f"{args.files} files, {samples} samples" not in line:
            raise SystemExit(f"stats disagree with what was seeded: {line}")

        times: dict[str, list[float]] = {"stats": [], "listing": []}
        for round_index in range(args.rounds):
            order = [("stats", ours), ("listing", listing)]
            for name, command in order if round_index % 2 == 0 else reversed(order):
                seconds, _ = timed(command, env)
                times[name].append(seconds)
        per_round = [
            ours_s / list_s for ours_s, list_s in zip(times["stats"], times["listing"], strict=True)
        ]
        median_stats, median_listing = (statistics.median(times[k]) for k in ("stats", "listing"))
        print(f"repeated stats (one listing + the cache object): median {median_stats:.2f} s")
        print(f"one listing of the prefix (boto3 paginator):      median {median_listing:.2f} s")
        print(f"ratio stats/listing: {median_stats / median_listing:.2f}x (goal <= 1.5x); "
              f"per round: {' '.join(f'{r:.2f}' for r in per_round)}")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main()
