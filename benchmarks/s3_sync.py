"""Benchmark: `data-platform s3 upload|download` against `aws s3 sync`, `s5cmd` and `rclone`.

All run as whole processes (start-up counts; aws and s5cmd from this venv, rclone from the system:
`apt-get install -y rclone`, skipped with that hint when missing) against one SeaweedFS server
(the dev stack's), each into its own bucket, on two data sets measured separately: many small
files and a few large ones. Per round the tools take turns in a rotating order; the table shows
medians over rounds (not best-of) and, per line, ours against the fastest anchor, with per-round
ratios. Same durability on every side: ours fsyncs every downloaded file before renaming it, so
an anchor's download is timed together with one `sync -f` of its target folder afterwards.

    uv run python benchmarks/s3_sync.py --rounds 5      # 2,000 x 10 KB, then 20 x 20 MB
    uv run python benchmarks/s3_sync.py --small 200 --large 2 --large-mb 8 --rounds 2
    uv run python benchmarks/s3_sync.py --sets small --tools ours --ours-args "--workers 8"
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
from data_platform.core.files import file_md5

BIN = Path(sys.executable).parent
TOOLS = ("ours", "aws", "s5cmd", "rclone")
RCLONE_HINT = "rclone is not installed: apt-get update && apt-get install -y rclone"
STEPS = ("upload", "no-op re-sync (upload)", "download", "no-op re-sync (download)")


def generate(root: Path, count: int, size: int, layout: str) -> int:
    for index in range(count):
        if layout == "small":
            path = root / f"year=2024/month={index % 12 + 1:02d}/part-{index:05d}.csv"
        else:
            path = root / f"large/blob-{index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return count * size


def timed(command: list[str], env: dict[str, str]) -> float:
    # Untimed: what the previous command (or the server) left dirty is written out first, so
    # no tool pays for another's writeback (an anchor's `sync -f` would flush it all).
    os.sync()
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {shlex.join(command)}\n{result.stderr}")
    return seconds


def same_tree(left: Path, right: Path) -> bool:
    left_files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    right_files = sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    return left_files == right_files and all(
        filecmp.cmp(left / name, right / name, shallow=False) for name in left_files
    )


def commands(
    tool: str, endpoint: str, source: Path, target: Path, prefix: str, ours_args: str
) -> tuple[list[str], list[str]]:
    """(upload, download) command lines of one tool; bucket `bench-<tool>`."""
    url = f"s3://bench-{tool}/{prefix}"
    if tool == "ours":
        ours = [str(BIN / "data-platform"), "s3"]
        at = ["--bucket", "bench-ours", "--prefix", prefix, "--endpoint-url", endpoint]
        extra = shlex.split(ours_args)
        return (
            [*ours, "upload", "--local-dir", str(source), *at, *extra],
            [*ours, "download", "--local-dir", str(target), *at, *extra],
        )
    if tool == "aws":
        aws = [str(BIN / "aws"), "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors"]
        return durable([*aws, str(source), url], [*aws, url, str(target)], target)
    if tool == "s5cmd":
        s5cmd = [str(BIN / "s5cmd"), "--endpoint-url", endpoint, "sync"]
        return durable(
            [*s5cmd, f"{source}/", f"{url}/"], [*s5cmd, f"{url}/*", f"{target}/"], target
        )
    remote = (
        f":s3,provider=Other,endpoint='{endpoint}',access_key_id=testing,"
        f"secret_access_key=testing,region=us-east-1,force_path_style=true:bench-rclone/{prefix}"
    )
    rclone = ["rclone", "sync", "--config", "/dev/null"]
    return durable([*rclone, str(source), remote], [*rclone, remote, str(target)], target)


def durable(upload: list[str], download: list[str], target: Path) -> tuple[list[str], list[str]]:
    """An anchor's download followed by one `sync -f` of its target folder (ours fsyncs)."""
    return upload, ["sh", "-c", f"{shlex.join(download)} && sync -f {shlex.quote(str(target))}"]


def run_round(
    number: int, endpoint: str, source: Path, work: Path, env: dict[str, str], args: Any
) -> dict[str, dict[str, float]]:
    """Upload, no-op, download, no-op for every tool, in an order that rotates per round."""
    prefix = f"{source.name}/round{number}"  # a prefix per data set and round: nothing shared
    order = [args.tools[(i + number) % len(args.tools)] for i in range(len(args.tools))]
    targets = {tool: work / f"down-{tool}-{number}" for tool in args.tools}
    lines = {
        tool: commands(tool, endpoint, source, targets[tool], prefix, args.ours_args)
        for tool in args.tools
    }
    results: dict[str, dict[str, float]] = {}
    for step in STEPS:
        index = 0 if step.endswith("upload)") or step == "upload" else 1
        results[step] = {tool: timed(lines[tool][index], env) for tool in order}
        shown = "  ".join(f"{tool} {results[step][tool]:6.2f}s" for tool in args.tools)
        print(f"  round {number} {step:26} {shown}", flush=True)
    for tool, target in targets.items():
        if not same_tree(source, target):
            raise SystemExit(f"{tool}: {target} differs from the source tree")
        shutil.rmtree(target)
    return results


def md5_seconds(root: Path) -> float:
    """CPU time of the MD5 of every file under `root` in this process: what verifying a
    download costs (ours and rclone check it; aws-cli and s5cmd check nothing on download)."""
    started = time.process_time()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            file_md5(path)
    return time.process_time() - started


def print_table(title: str, rounds: list[dict[str, dict[str, float]]], tools: list[str]) -> None:
    print(f"\n{title}: medians of {len(rounds)} round(s), seconds, whole processes")
    anchors = [tool for tool in tools if tool != "ours"]
    header = "".join(f"{tool:>9}" for tool in tools)
    print(f"{'step':26}{header}  best anchor / ours   per round")
    for step in STEPS:
        medians = {tool: statistics.median(r[step][tool] for r in rounds) for tool in tools}
        row = "".join(f"{medians[tool]:9.2f}" for tool in tools)
        if not anchors or "ours" not in tools:
            print(f"{step:26}{row}")
            continue
        per_round = [min(r[step][a] for a in anchors) / r[step]["ours"] for r in rounds]
        best = min(medians[a] for a in anchors)
        print(
            f"{step:26}{row}  {best / medians['ours']:6.2f}x            "
            + " ".join(f"{ratio:.2f}" for ratio in per_round)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="number of small files")
    parser.add_argument("--small-kb", type=int, default=10, help="size of a small file")
    parser.add_argument("--large", type=int, default=20, help="number of large files")
    parser.add_argument("--large-mb", type=int, default=20, help="size of a large file")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per set (median)")
    parser.add_argument("--sets", default="small,large", help="data sets to run, in order")
    parser.add_argument(
        "--tools", default=",".join(TOOLS), help="tools to run (ours,aws,s5cmd,rclone)"
    )
    parser.add_argument("--ours-args", default="", help="extra options for data-platform s3")
    args = parser.parse_args()
    args.tools = args.tools.split(",")
    if "rclone" in args.tools and shutil.which("rclone") is None:
        print(f"skipping rclone: {RCLONE_HINT}", flush=True)
        args.tools.remove("rclone")

    sets = {
        "small": (args.small, args.small_kb * 1024, f"{args.small:,} x {args.small_kb} KB"),
        "large": (args.large, args.large_mb * 2**20, f"{args.large:,} x {args.large_mb} MB"),
    }
    # Ours runs from compiled bytecode, as after `make setup`: where Python writes no caches
    # (PYTHONDONTWRITEBYTECODE), a module edited since would be compiled again by every process.
    package = Path(devstack.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    with tempfile.TemporaryDirectory(prefix="s3sync-bench-") as tmp:
        work = Path(tmp)
        (work / "aws-config").write_text("")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": devstack.S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": devstack.S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",  # s5cmd reads this one
            "AWS_CONFIG_FILE": str(work / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-config"),
            "DATA_PLATFORM_CACHE_DIR": str(work / "cache"),
        }
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_CA_BUNDLE", None)  # plain HTTP; rclone refuses a custom bundle on it
        server = devstack.start_s3_server()
        tables = []
        try:
            client = make_client(server.endpoint_url)
            for tool in args.tools:
                client.create_bucket(Bucket=f"bench-{tool}")
                # The bucket's first write makes its volume: not part of any tool's first round.
                client.put_object(Bucket=f"bench-{tool}", Key="warm-up", Body=b"x")
            for name in args.sets.split(","):
                count, size, title = sets[name]
                source = work / f"source-{name}"
                generate(source, count, size, name)
                print(f"{title} ({count * size / 2**20:.1f} MiB)", flush=True)
                # Rounds write to prefixes of their own and nothing is deleted: deletes leave
                # garbage the server compacts in the background, at a moment that favours
                # no tool.
                rounds = [
                    run_round(number, server.endpoint_url, source, work, env, args)
                    for number in range(args.rounds)
                ]
                tables.append((title, rounds, md5_seconds(source)))
                shutil.rmtree(source)
        finally:
            server.stop()
    for title, rounds, verify_seconds in tables:
        print_table(title, rounds, args.tools)
        label = "MD5 of the data, 1 core"
        print(f"{label:26}{verify_seconds:9.2f}  (what verifying a download costs)")


def make_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


if __name__ == "__main__":
    main()
