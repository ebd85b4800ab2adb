"""Benchmark: the hot/warm tiers against Delta Lake (`deltalake`) on the same change log.

Data: --days of 10-minute slots (one month = 4,464), each with --rows changed rows drawn from a
--keys universe (2 % of them Ceased), generated identically (seeded per slot) in every process.
Each side runs as whole processes, the way a user runs it (start-up counts):
- ingest, once per side: ours = upload_hot_tier + run_compaction per slot (the collector's loop);
  Delta = one write_deltalake(mode="append") per slot, then optimize.compact();
- reads, --rounds rounds in alternating order, each a process answering "latest row per key at T"
  at the same --reads random moments: ours = read_state; Delta = time travel to the version of T
  (pl.scan_delta(version=...)) and, as a second anchor, the optimized latest version filtered on
  Time ≤ T. Medians, per-round ratios and bytes read are printed.
Also printed: bytes written / bytes ingested against ⌈log₈ N⌉, and the compaction step time over
N (per eighth of the run), which should stay flat.

    uv run python benchmarks/tiers.py --days 31          # one month on the local folder store
    uv run python benchmarks/tiers.py --days 93          # three months
    uv run python benchmarks/tiers.py --days 2 --s3      # a short run on the dev stack's SeaweedFS
    uv run python benchmarks/tiers.py --days 93 --workdir W --phase ingest  # both stores, once
    uv run python benchmarks/tiers.py --days 93 --workdir W --phase read    # then the reads

With --workdir the stores and the ingest figures (with the load average around them) are kept in
W, so the long ingest and the reads can run at different times; a read phase prints the ingest
figures it finds there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 1, 1, tzinfo=UTC)
SLOT = timedelta(minutes=10)


def slot_frame(index: int, rows: int, keys: int):
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(index)
    chosen = rng.choice(keys, size=rows, replace=False)
    return pl.DataFrame(
        {
            "InstanceType": [f"i{k // 60}.{k % 7}xl" for k in chosen.tolist()],
            "Region": [f"region-{k % 10}" for k in chosen.tolist()],
            "AZ": [f"az{k % 6}" for k in chosen.tolist()],
            "SPS": rng.integers(1, 4, size=rows).astype("int32"),
            "Ceased": rng.random(rows) < 0.02,
        }
    )


def folder_bytes(path: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def open_store(args: argparse.Namespace):
    from data_platform.core.objectstore import object_store_from_url

    if args.endpoint:
        import boto3

        client = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1")
        return object_store_from_url(f"s3://{args.bucket}/ours", client_factory=lambda: client)
    return object_store_from_url(str(Path(args.dir) / "ours"))


def delta_location(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    if args.endpoint:
        options = {
            "AWS_ENDPOINT_URL": args.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        }
        return f"s3://{args.bucket}/delta", options
    return str(Path(args.dir) / "delta"), {}


def ingest_ours(args: argparse.Namespace) -> dict:
    from data_platform.tiers import run_compaction, upload_hot_tier

    store, steps, hot_bytes = open_store(args), [], 0
    for index in range(args.slots):
        slot = START + index * SLOT
        frame = slot_frame(index, args.rows, args.keys)
        key = upload_hot_tier(frame, slot, "aws", store=store)
        hot_bytes += store.head(key).size
        began = time.perf_counter()
        run_compaction(key, slot, "aws", store=store, timeout_seconds=600)
        steps.append(time.perf_counter() - began)
    written = sum(i.size for i in store.list(""))
    return {
        "steps": steps,
        "hot_bytes": hot_bytes,
        "written_bytes": written,
        "data_bytes": sum(i.size for i in store.list("") if i.key.endswith(".parquet")),
    }


def ingest_delta(args: argparse.Namespace) -> dict:
    import polars as pl
    from deltalake import DeltaTable, write_deltalake

    path, options = delta_location(args)
    for index in range(args.slots):
        slot = START + index * SLOT
        frame = slot_frame(index, args.rows, args.keys).with_columns(
            pl.lit(slot).cast(pl.Datetime("us", "UTC")).alias("Time")
        )
        write_deltalake(path, frame, mode="append", storage_options=options or None)
    began = time.perf_counter()
    DeltaTable(path, storage_options=options or None).optimize.compact()
    return {
        "optimize_seconds": time.perf_counter() - began,
        "written_bytes": folder_bytes(Path(path)) if not args.endpoint else None,
    }


def read_ours(args: argparse.Namespace, moments: list[datetime]) -> dict:
    from data_platform.tiers.reader import read_state_with_stats

    store, out = open_store(args), []
    for at in moments:
        began = time.perf_counter()
        frame, stats = read_state_with_stats("aws", at, store=store)
        out.append(
            {
                "seconds": time.perf_counter() - began,
                "rows": frame.height,
                "objects": len(stats.objects),
                "bytes": stats.bytes,
            }
        )
    return {"reads": out}


def read_delta(args: argparse.Namespace, moments: list[datetime], latest: bool) -> dict:
    import polars as pl
    from deltalake import DeltaTable

    path, options = delta_location(args)
    pk = ["InstanceType", "Region", "AZ"]
    out = []
    for at in moments:
        began = time.perf_counter()
        version = (at - START) // SLOT  # version k holds slots 0..k (one append per slot)
        if latest:
            scan = pl.scan_delta(path, storage_options=options or None).filter(pl.col("Time") <= at)
        else:
            scan = pl.scan_delta(path, version=version, storage_options=options or None)
        state = scan.sort("Time").unique(subset=pk, keep="last").filter(~pl.col("Ceased")).collect()
        seconds = time.perf_counter() - began
        table = DeltaTable(
            path, version=None if latest else version, storage_options=options or None
        )
        files = table.get_add_actions(flatten=True)
        size = sum(pl.DataFrame(files)["size_bytes"].to_list()) if not args.endpoint else None
        out.append(
            {
                "seconds": seconds,
                "rows": state.height,
                "objects": len(table.file_uris()),
                "bytes": size,
            }
        )
    return {"reads": out}


def child(argv: list[str]) -> None:
    args = parse(argv)
    moments = [datetime.fromisoformat(m) for m in args.moments.split(",")] if args.moments else []
    result = {
        "ingest-ours": lambda: ingest_ours(args),
        "ingest-delta": lambda: ingest_delta(args),
        "read-ours": lambda: read_ours(args, moments),
        "read-delta": lambda: read_delta(args, moments, latest=False),
        "read-delta-latest": lambda: read_delta(args, moments, latest=True),
    }[args.mode]()
    print(json.dumps(result))


def run_child(args: argparse.Namespace, mode: str, moments: str = "") -> tuple[float, dict]:
    command = [
        sys.executable,
        __file__,
        "--mode",
        mode,
        "--dir",
        args.dir,
        "--days",
        str(args.days),
        "--rows",
        str(args.rows),
        "--keys",
        str(args.keys),
        "--moments",
        moments,
    ]
    if args.endpoint:
        command += ["--endpoint", args.endpoint, "--bucket", args.bucket]
    from data_platform.devstack import S3_ACCESS_KEY, S3_SECRET_KEY

    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY}
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - began, json.loads(done.stdout.strip().splitlines()[-1])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=float, default=31.0, help="31 = one month of slots")
    parser.add_argument("--rows", type=int, default=2000, help="changed rows per slot")
    parser.add_argument("--keys", type=int, default=20_000, help="key universe")
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="run on the dev stack's SeaweedFS")
    parser.add_argument("--workdir", default=None, help="keep the stores here (local folder only)")
    parser.add_argument("--phase", choices=["all", "ingest", "read"], default="all")
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--moments", default="", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bucket", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workdir and args.s3:
        parser.error("--workdir keeps a local folder store; it cannot be combined with --s3")
    args.slots = int(args.days * 144)
    return args


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str]) -> None:
    args = parse(argv)
    server = None
    with contextlib.ExitStack() as stack:
        if args.workdir:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
            args.dir = args.workdir
        else:
            args.dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tiers-bench-"))
        if args.s3:
            import boto3

            from data_platform import devstack

            server = devstack.start_s3_server()
            args.endpoint, args.bucket = server.endpoint_url, "tiers-bench"
            os.environ.update(
                {
                    "AWS_ACCESS_KEY_ID": devstack.S3_ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": devstack.S3_SECRET_KEY,
                }
            )
            boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1").create_bucket(
                Bucket=args.bucket
            )
        try:
            report(args)
        finally:
            if server is not None:
                server.stop()


def report(args: argparse.Namespace) -> None:
    store = "SeaweedFS S3 server" if args.s3 else "local folder"
    print(
        f"{args.slots} slots ({args.days:g} days) x {args.rows} rows over {args.keys} keys, "
        f"{store}; started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    ingested = Path(args.dir) / "ingest.json"
    if args.phase == "read":
        if not ingested.exists():
            raise SystemExit(f"no ingest figures in {args.dir}: run --phase ingest first")
        saved = json.loads(ingested.read_text())
    else:
        saved = {"load_before": os.getloadavg(), "started": f"{datetime.now(UTC):%H:%M}"}
        saved["ours"] = run_child(args, "ingest-ours")
        saved["delta"] = run_child(args, "ingest-delta")
        saved["load_after"] = os.getloadavg()
        if args.workdir:
            ingested.write_text(json.dumps(saved))
    (ours_seconds, ours), (delta_seconds, delta) = saved["ours"], saved["delta"]
    print(
        f"ingest started {saved['started']} UTC, load average before "
        f"{saved['load_before'][0]:.2f}, after (1/5/15 min) "
        + "/".join(f"{x:.2f}" for x in saved["load_after"])
    )
    print(
        f"ingest (one process each): ours {ours_seconds:.1f} s, delta {delta_seconds:.1f} s "
        f"(incl. optimize {delta['optimize_seconds']:.1f} s); delta/ours "
        f"{delta_seconds / ours_seconds:.2f}x"
    )
    per_month = min(args.slots, 4464)
    bound = math.ceil(math.log(per_month, 8))
    print(
        f"bytes written / ingested: all objects {ours['written_bytes'] / ours['hot_bytes']:.2f}, "
        f"parquet only {ours['data_bytes'] / ours['hot_bytes']:.2f} "
        f"(bound ceil(log8 {per_month}) = {bound}); delta wrote {delta['written_bytes']} bytes"
    )
    if args.phase == "ingest":
        return
    steps = ours["steps"]
    eighth = max(len(steps) // 8, 1)
    chunks = [steps[i : i + eighth] for i in range(0, len(steps), eighth)][:8]
    print(
        "compaction step, mean ms per eighth of the run: "
        + " ".join(f"{1000 * statistics.mean(c):.1f}" for c in chunks)
        + f"; max {1000 * max(steps):.0f} ms"
    )
    rng = random.Random(5)
    span = args.slots * 600
    moments = [START + timedelta(seconds=rng.randrange(span)) for _ in range(args.reads)]
    text = ",".join(m.isoformat() for m in moments)
    modes = ["read-ours", "read-delta", "read-delta-latest"]
    results: dict[str, list[tuple[float, dict]]] = {m: [] for m in modes}
    for round_ in range(args.rounds):
        for mode in modes if round_ % 2 == 0 else list(reversed(modes)):
            results[mode].append(run_child(args, mode, text))
    for mode in modes:
        per_read = [median([r["seconds"] for r in out["reads"]]) for _, out in results[mode]]
        last = results[mode][-1][1]["reads"]
        bytes_read = [r["bytes"] for r in last if r["bytes"] is not None]
        print(
            f"{mode:18s} process median {median([s for s, _ in results[mode]]):.2f} s, "
            f"per read median {1000 * median(per_read):.0f} ms, objects/read median "
            f"{median([r['objects'] for r in last]):.0f} (max {max(r['objects'] for r in last)})"
            + (f", bytes/read median {median(bytes_read):,.0f}" if bytes_read else "")
        )
    for anchor in modes[1:]:
        ratios = [a[0] / o[0] for a, o in zip(results[anchor], results["read-ours"], strict=True)]
        print(
            f"read ratio {anchor}/ours per round: "
            + " ".join(f"{r:.2f}" for r in ratios)
            + f"; median {median(ratios):.2f}x"
        )
    rows_ok = all(
        o["rows"] == d["rows"]
        for o, d in zip(
            results["read-ours"][-1][1]["reads"], results["read-delta"][-1][1]["reads"], strict=True
        )
    )
    print(f"same answers (row counts equal at every moment): {rows_ok}")


if __name__ == "__main__":
    if "--mode" in sys.argv:
        child(sys.argv[1:])
    else:
        main(sys.argv[1:])
