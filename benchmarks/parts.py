"""Benchmark: the parts pipeline against the naive ways, as whole processes.

1. Crawl: a local supplier (this process, real HTTP on 127.0.0.1) with --car-types x --pages x 40
   items and --latency per request. Ours: `data-platform parts run` (start-up, crawl, raw store
   writes, transform, load: the whole day) with concurrency 16 and 100 requests/s; the anchor: a
   sequential `requests.Session` loop that fetches the same pages and writes each body to a file.
   Printed: pages/s of both, ours against the configured limit min(rps, concurrency / latency).
2. Transform + load of --offers offers (40 per stored page, 2,500 part names x 20 car types):
   ours (`DayRun.transform` + `load` in a fresh Python process: polars, COPY, one upsert) against
   pandas (json + DataFrame cleaning + groupby) and `to_sql(method='multi')` of the same rows into
   a plain table (which does less than our upsert). --pandas-offers runs pandas on a subset and
   scales its time by offers (printed as such) when it is smaller than --offers.
Both run --rounds times, alternating which goes first; medians and per-round ratios are printed.

    uv run python benchmarks/parts.py                                   # full size
    uv run python benchmarks/parts.py --pages 5 --offers 100000 --rounds 2   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from data_platform import devstack
from data_platform.parts.supplier_server import SupplierServer, synthetic_catalog

CAR_TYPES = [
    *("아반떼", "쏘나타", "그랜저", "K3", "K5", "K8", "투싼", "싼타페", "팰리세이드", "스포티지"),
    *("쏘렌토", "카니발", "모닝", "레이", "캐스퍼", "코나", "니로", "셀토스", "G80", "GV70"),
]
ITEMS_PER_PAGE = 40
CONCURRENCY = 16
REQUESTS_PER_SECOND = 100
DAY = "2026-11-20"

SEQUENTIAL_LOOP = """
import sys, requests
from pathlib import Path
from urllib.parse import quote
base, out, pages, cars = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
fetched = 0
with requests.Session() as session:
    for car in cars:
        for page in range(1, pages + 1):
            response = session.get(f"{base}/parts", params={"car_type": car, "page": page},
                                   timeout=10)
            response.raise_for_status()
            (out / f"{quote(car, safe='')}-{page}.json").write_bytes(response.content)
            fetched += 1
            if not response.json()["has_next"]:
                break
print(fetched)
"""

OURS_TRANSFORM_LOAD = """
import sys
from datetime import date
from data_platform.core.objectstore_local import LocalObjectStore
from data_platform.parts.config import SupplierConfig
from data_platform.parts.notify import LogOnly
from data_platform.parts.pipeline import DayRun
store = LocalObjectStore(sys.argv[1])
config = SupplierConfig(code="bench", base_url="http://127.0.0.1:1", car_types=("x",))
run = DayRun(config, date.fromisoformat(sys.argv[3]), store, store, sys.argv[2], LogOnly())
print(run.transform().offers, run.load().rows_upserted)
"""

PANDAS_TRANSFORM_LOAD = """
import json, sys
from pathlib import Path
import pandas as pd
from sqlalchemy import create_engine
root, url, day, limit = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
items = []
for path in sorted((root / f"parts/bench/date={day}/pages").rglob("*.json")):
    items.extend(json.loads(path.read_bytes())["items"])
    if len(items) >= limit:
        break
frame = pd.DataFrame(items[:limit])
def clean(s):
    s = s.astype("string").str.normalize("NFKC").str.replace(r"\\s+", " ", regex=True).str.strip()
    return s.mask(s == "")
frame["part_official_name"] = clean(frame["name"])
frame["car_type"] = clean(frame["car_type"])
text = frame["price"].astype("string").str.normalize("NFKC")
text = text.str.replace(r"(?i)krw|[₩원,\\s]", "", regex=True)
frame["price"] = pd.to_numeric(text.where(text.str.fullmatch(r"-?\\d{1,18}")), errors="coerce")
frame = frame.dropna(subset=["part_official_name", "car_type", "price"])
frame = frame[frame["price"] > 0].drop_duplicates("url")
out = frame.groupby(["part_official_name", "car_type"]).price.agg(
    min_price="min", max_price="max", price_sum="sum", offer_count="count").reset_index()
out["avg_price"] = (2 * out.price_sum + out.offer_count) // (2 * out.offer_count)
out["extracted_at"] = pd.Timestamp(day).date()
out = out.drop(columns="price_sum")
engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
out.to_sql("pandas_prices", engine, if_exists="replace", index=False, method="multi",
           chunksize=10_000)
print(len(frame), len(out))
"""


def timed(command: list[str]) -> tuple[float, str]:
    # A user's installed environment has compiled bytecode; this machine's shell sets
    # PYTHONDONTWRITEBYTECODE, which would make every start-up recompile every module.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def alternate(rounds: int, ours, anchor) -> tuple[list[float], list[float]]:
    """Round 0 warms both up (bytecode, page cache) and is not counted."""
    times: tuple[list[float], list[float]] = ([], [])
    ours(-1), anchor(-1)
    for index in range(rounds):
        order = [(0, ours), (1, anchor)] if index % 2 == 0 else [(1, anchor), (0, ours)]
        for slot, run in order:
            times[slot].append(run(index))
    return times


def crawl_benchmark(args: argparse.Namespace, pg_admin: str, work: Path) -> None:
    cars = CAR_TYPES[: args.car_types]
    server = SupplierServer(synthetic_catalog(cars, args.pages, ITEMS_PER_PAGE), args.latency)
    base_url = server.start()
    pages = len(cars) * args.pages
    config = work / "bench.toml"
    config.write_text(
        f'code = "bench"\nbase_url = "{base_url}"\ncar_types = {json.dumps(cars)}\n'
        f"max_pages = {args.pages}\nconcurrency = {CONCURRENCY}\n"
        f"requests_per_second = {REQUESTS_PER_SECOND}\ntimeout_seconds = 10\n",
        encoding="utf-8",
    )

    def ours(index: int) -> float:
        db = devstack.create_database(pg_admin, f"crawl_{index + 1}")
        command = [sys.executable, "-m", "data_platform.cli", "parts", "run", "--date", DAY,
                   "--supplier-config", str(config), "--db-url", db,
                   "--store", str(work / f"store-{index + 1}"), "--json"]  # fmt: skip
        seconds, out = timed(command)
        assert json.loads(out.partition("\n")[2])["succeeded"] == pages, out
        return seconds

    def sequential(index: int) -> float:
        out = work / f"seq-{index + 1}"
        out.mkdir()
        command = [sys.executable, "-c", SEQUENTIAL_LOOP, base_url, str(out), str(args.pages)]
        seconds, printed = timed(command + cars)
        assert int(printed) == pages, printed
        return seconds

    try:
        mine, naive = alternate(args.rounds, ours, sequential)
    finally:
        server.stop()
    limit = min(REQUESTS_PER_SECOND, CONCURRENCY / args.latency)
    ours_rate, naive_rate = pages / statistics.median(mine), pages / statistics.median(naive)
    print(
        f"\ncrawl: {len(cars)} car types x {args.pages} pages x {ITEMS_PER_PAGE} items = "
        f"{pages:,} pages, {args.latency * 1000:.0f} ms latency, {args.rounds} rounds"
    )
    print(
        f"  ours `parts run` (whole day, whole process): median {statistics.median(mine):.2f} s"
        f" = {ours_rate:.1f} pages/s; configured limit {limit:.0f} pages/s "
        f"(concurrency {CONCURRENCY}, {REQUESTS_PER_SECOND} req/s) -> {ours_rate / limit:.0%}"
    )
    print(
        f"  sequential requests loop: median {statistics.median(naive):.2f} s = "
        f"{naive_rate:.1f} pages/s"
    )
    ratios = " ".join(f"{n / m:.2f}" for m, n in zip(mine, naive, strict=True))
    print(f"  ours / sequential: {ours_rate / naive_rate:.2f}x (per round {ratios})")


def write_pages(root: Path, offers: int) -> int:
    """Pages as the crawl stores them (through the local object store, with its etag sidecars)."""
    from concurrent.futures import ThreadPoolExecutor

    from data_platform.core.objectstore_local import LocalObjectStore
    from data_platform.parts.page_requests import PageRequest, page_key

    pages_per_car = -(-offers // (ITEMS_PER_PAGE * len(CAR_TYPES)))
    catalog = synthetic_catalog(CAR_TYPES, pages_per_car, ITEMS_PER_PAGE, parts=2_500)
    store, day = LocalObjectStore(root), date.fromisoformat(DAY)
    bodies = {
        page_key("bench", day, PageRequest(car, number, "")): json.dumps(
            {"items": items, "has_next": number < len(pages)}, ensure_ascii=False
        ).encode()
        for car, pages in catalog.items()
        for number, items in enumerate(pages, start=1)
    }
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.put, bodies, bodies.values()))
    return sum(len(items) for pages in catalog.values() for items in pages)


def transform_benchmark(args: argparse.Namespace, pg_admin: str, work: Path) -> None:
    root = work / "pages"
    offers = write_pages(root, args.offers)
    pandas_offers = min(args.pandas_offers, offers)

    def ours(index: int) -> float:
        db = devstack.create_database(pg_admin, f"ours_{index + 1}")
        seconds, out = timed([sys.executable, "-c", OURS_TRANSFORM_LOAD, str(root), db, DAY])
        assert int(out.split()[0]) == offers, out
        return seconds

    def pandas(index: int) -> float:
        db = devstack.create_database(pg_admin, f"pandas_{index + 1}")
        command = [sys.executable, "-c", PANDAS_TRANSFORM_LOAD, str(root), db, DAY]
        seconds, _out = timed([*command, str(pandas_offers)])
        return seconds * offers / pandas_offers

    mine, theirs = alternate(args.rounds, ours, pandas)
    scaled = "" if pandas_offers == offers else f" (run on {pandas_offers:,}, scaled by offers)"
    print(f"\ntransform + load: {offers:,} offers in {offers // ITEMS_PER_PAGE:,} stored pages, "
          f"{args.rounds} rounds")  # fmt: skip
    print(f"  ours (polars + COPY + upsert): median {statistics.median(mine):.2f} s")
    print(f"  pandas + to_sql(method='multi'){scaled}: median {statistics.median(theirs):.2f} s")
    ratios = " ".join(f"{t / m:.2f}" for m, t in zip(mine, theirs, strict=True))
    print(
        f"  pandas / ours: {statistics.median(theirs) / statistics.median(mine):.2f}x "
        f"(per round {ratios})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--car-types", type=int, default=20, choices=range(1, 21))
    parser.add_argument("--pages", type=int, default=50, help="pages per car type")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--offers", type=int, default=1_000_000)
    parser.add_argument("--pandas-offers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["crawl", "transform"], default=None)
    args = parser.parse_args()
    server = devstack.start_postgres()
    try:
        with tempfile.TemporaryDirectory(prefix="parts-bench-") as tmp:
            if args.only in (None, "crawl"):
                crawl_benchmark(args, server.url, Path(tmp))
            if args.only in (None, "transform"):
                transform_benchmark(args, server.url, Path(tmp))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
