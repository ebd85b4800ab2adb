"""Benchmark: `data-platform s3 upload|download` against `aws s3 sync` on one moto server.

Both tools run as whole processes from this venv (start-up counts), each into its own bucket.
Lines: upload, no-op re-sync, download; plus one paginated listing of the prefix, in-process
and as a process, which is the floor a no-op re-sync is compared against.

    uv run python benchmarks/s3_sync.py                      # 2,000 x 10 KB + 20 x 20 MB
    uv run python benchmarks/s3_sync.py --small 200 --large 2 --large-mb 8
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from data_platform import devstack

BIN = Path(sys.executable).parent
LISTING_SCRIPT = """
import sys, boto3
client = boto3.client("s3", endpoint_url=sys.argv[1])
pages = client.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=sys.argv[3])
print(sum(len(page.get("Contents", ())) for page in pages))
"""


def generate_tree(root: Path, small: int, small_kb: int, large: int, large_mb: int) -> int:
    total = 0
    for index in range(small):
        path = root / f"year=2024/month={index % 12 + 1:02d}/part-{index:05d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(small_kb * 1024))
        total += small_kb * 1024
    for index in range(large):
        path = root / f"large/blob-{index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(large_mb * 1024 * 1024))
        total += large_mb * 1024 * 1024
    return total


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")
    return seconds, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def same_tree(left: Path, right: Path) -> bool:
    left_files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    right_files = sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    return left_files == right_files and all(
        filecmp.cmp(left / name, right / name, shallow=False) for name in left_files
    )


STEPS = ("upload", "no-op re-sync (upload)", "download", "no-op re-sync (download)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of small files")
    parser.add_argument("--small-kb", type=int, default=10, help="size of a small file")
    parser.add_argument("--large", type=int, default=20, help="number of large files")
    parser.add_argument("--large-mb", type=int, default=20, help="size of a large file")
    parser.add_argument("--rounds", type=int, default=1, help="best of N, alternating order")
    parser.add_argument("--ours-args", default="", help="extra options for data-platform s3")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="s3sync-bench-") as tmp:
        work = Path(tmp)
        source = work / "source"
        total = generate_tree(source, args.small, args.small_kb, args.large, args.large_mb)
        print(f"tree: {args.small + args.large} files, {total / 2**20:.1f} MiB")
        (work / "aws-config").write_text("")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(work / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-config"),
            "DATA_PLATFORM_CACHE_DIR": str(work / "cache"),
        }
        env.pop("AWS_PROFILE", None)
        server = devstack.start_s3_server()
        try:
            client = make_client(server.endpoint_url)
            for bucket in ("bench-ours", "bench-aws"):
                client.create_bucket(Bucket=bucket)
            rounds = [
                run_round(number, client, server.endpoint_url, source, work, env, args.ours_args)
                for number in range(args.rounds)
            ]
        finally:
            server.stop()
    print_table(rounds)


def make_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def run_round(
    number: int,
    client: Any,
    endpoint: str,
    source: Path,
    work: Path,
    env: dict[str, str],
    ours_args: str = "",
) -> dict[str, tuple[float, float | None]]:
    """One upload / no-op / download / no-op for both tools; returns seconds per step."""
    prefix = f"round{number}"
    ours_dir, aws_dir = work / f"down-ours-{number}", work / f"down-aws-{number}"
    ours = [str(BIN / "data-platform"), "s3"]
    location = ["--bucket", "bench-ours", "--endpoint-url", endpoint, *shlex.split(ours_args)]
    at = [*location, "--prefix", prefix]
    aws = [str(BIN / "aws"), "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors"]
    commands = {
        "upload": (
            [*ours, "upload", "--local-dir", str(source), *at],
            [*aws, str(source), f"s3://bench-aws/{prefix}"],
        ),
        "download": (
            [*ours, "download", "--local-dir", str(ours_dir), *at],
            [*aws, f"s3://bench-aws/{prefix}", str(aws_dir)],
        ),
    }
    commands["no-op re-sync (upload)"] = commands["upload"]
    commands["no-op re-sync (download)"] = commands["download"]
    aws_first = number % 2 == 1
    results: dict[str, tuple[float, float | None]] = {}
    for step in STEPS:
        ours_cmd, aws_cmd = commands[step]
        if aws_first:
            aws_seconds, _ = timed(aws_cmd, env)
        ours_seconds, summary = timed(ours_cmd, env)
        if not aws_first:
            aws_seconds, _ = timed(aws_cmd, env)
        print(
            f"round {number} {step:26} ours {ours_seconds:6.2f}s  "
            f"aws {aws_seconds:6.2f}s  ({summary})"
        )
        results[step] = (ours_seconds, aws_seconds)
    for directory in (ours_dir, aws_dir):
        if not same_tree(source, directory):
            raise SystemExit(f"{directory} differs from the source tree")
        shutil.rmtree(directory)

    listing = [sys.executable, "-c", LISTING_SCRIPT, endpoint, "bench-ours", prefix + "/"]
    results["listing, as a process"] = (timed(listing, env)[0], None)
    results["listing, in-process"] = (in_process_listing(client, prefix + "/"), None)
    start_up = [sys.executable, "-c", "import boto3; boto3.client('s3', region_name='us-east-1')"]
    results["python + boto3 client start-up"] = (timed(start_up, env)[0], None)
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    ours_start = [*ours, "upload", "--local-dir", str(empty), *location, "--prefix", "nothing"]
    results["ours start-up (empty dir+prefix)"] = (timed(ours_start, env)[0], None)
    for bucket in ("bench-ours", "bench-aws"):
        empty_prefix(client, bucket, prefix)  # keep the server's memory flat across rounds
    return results


def in_process_listing(client: Any, prefix: str) -> float:
    client.list_buckets()  # connect first: time the listing, not the handshake
    started = time.perf_counter()
    paginator = client.get_paginator("list_objects_v2")
    for _ in paginator.paginate(Bucket="bench-ours", Prefix=prefix):
        pass
    return time.perf_counter() - started


def empty_prefix(client: Any, bucket: str, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def print_table(rounds: list[dict[str, tuple[float, float | None]]]) -> None:
    best = {
        step: (
            min(r[step][0] for r in rounds),
            None if rounds[0][step][1] is None else min(r[step][1] for r in rounds),
        )
        for step in rounds[0]
    }
    print(f"\nbest of {len(rounds)} round(s), seconds (each tool a whole process):")
    print(f"{'step':32} {'ours':>7} {'aws-cli':>8} {'aws/ours':>9}   per round (paired)")
    for step, (ours, other) in best.items():
        if other is None:
            print(f"{step:32} {ours:7.2f}")
            continue
        paired = [r[step][1] / r[step][0] for r in rounds]
        print(
            f"{step:32} {ours:7.2f} {other:8.2f} {other / ours:8.2f}x   "
            f"{' '.join(f'{ratio:.2f}x' for ratio in paired)} "
            f"(median {statistics.median(paired):.2f}x)"
        )
    noop = best["no-op re-sync (upload)"][0]
    listing = best["listing, as a process"][0]
    in_process = best["listing, in-process"][0]
    ours_start = best["ours start-up (empty dir+prefix)"][0]
    print(
        f"\nno-op re-sync (upload) {noop:.2f}s vs one listing as a process {listing:.2f}s "
        f"(ratio {listing / noop:.2f}x)\n"
        f"no-op minus our start-up {noop - ours_start:.2f}s vs in-process listing "
        f"{in_process:.2f}s (python + boto3 start-up "
        f"{best['python + boto3 client start-up'][0]:.2f}s, ours {ours_start:.2f}s)"
    )


if __name__ == "__main__":
    main()
