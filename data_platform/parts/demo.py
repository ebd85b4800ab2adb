"""Demo step: a local supplier on 127.0.0.1 (a few URLs failing for a while, one for good), one
day materialized through Dagster, then the loaded price ranges and the retried URLs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from data_platform.demo import DemoContext, DemoFailure, run_job
from data_platform.parts.supplier_server import (
    PART_NAMES,
    Reply,
    SupplierServer,
    running,
    synthetic_catalog,
)

CAR_TYPES = ["아반떼", "쏘나타", "그랜저"]
# demo.toml's settings with a short pause between self-healing rounds, so the demo is quick
DEMO_SUPPLIER = """code = "demo"
base_url = "{base_url}"
car_types = ["아반떼", "쏘나타", "그랜저"]
max_pages = 5
concurrency = 8
requests_per_second = 20
timeout_seconds = 2
max_retry_rounds = 3
round_delay_seconds = 1
parser = "json_listing"
"""


def scripted_server() -> SupplierServer:
    server = SupplierServer(synthetic_catalog(CAR_TYPES, pages=3, items_per_page=20), latency=0.02)
    server.script("아반떼", 1, Reply(500), Reply(500))  # healed by the crawl's own retries
    server.script("쏘나타", 2, Reply(429, retry_after="1"))  # honours Retry-After
    server.script("그랜저", 2, *[Reply(503)] * 4)  # fails the crawl, healed in round 1
    server.fail_always("그랜저", 3, Reply(503))  # still failing: reported, not fatal
    return server


def run_demo(ctx: DemoContext) -> None:
    from data_platform.core.postgres import connection
    from data_platform.parts.defs import JOB_NAME, STAGES, PartsResource, asset_key

    day = datetime.now(ZoneInfo("Asia/Seoul")).date().isoformat()
    with running(scripted_server()) as server:
        suppliers = ctx.workdir / "suppliers"
        suppliers.mkdir(exist_ok=True)
        (suppliers / "demo.toml").write_text(DEMO_SUPPLIER.format(base_url=server.base_url))
        ctx.say(f"local supplier at {server.base_url}: {len(CAR_TYPES)} car types x 3 pages")
        result = run_job(
            JOB_NAME,
            [asset_key(stage) for stage in STAGES],
            partition_key=f"{day}|demo",
            resources={"parts": PartsResource(suppliers_dir=str(suppliers))},
        )
        if not result.success:
            raise DemoFailure(f"parts run for {day}|demo failed")
        retried = sorted((k, n) for k, n in server.hits.items() if n > 1)
    with connection(ctx.pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT part_official_name, car_type, min_price, max_price, avg_price, offer_count"
            " FROM parts_prices WHERE extracted_at = %s ORDER BY car_type, part_official_name",
            (day,),
        )
        ranges = cur.fetchall()
        cur.execute("SELECT url, attempts FROM parts_failed_urls WHERE day = %s", (day,))
        failing = cur.fetchall()
    ctx.say(
        f"job {JOB_NAME} [{day}|demo]: {len(STAGES)} stages, {len(ranges)} price ranges loaded; "
        "retried " + ", ".join(f"{car} p{page} x{hits}" for (car, page), hits in retried)
    )
    ctx.run_cli("parts", "failed", "--date", day)
    if len(ranges) != len(CAR_TYPES) * len(PART_NAMES):
        raise DemoFailure(f"expected {len(CAR_TYPES) * len(PART_NAMES)} price ranges: {ranges}")
    if [url.rsplit("&", 1)[-1] for url, _ in failing] != ["page=3"] or failing[0][1] != 16:
        raise DemoFailure(f"expected only 그랜저 page 3 failing after 16 attempts: {failing}")
    ctx.say("verified: transient failures healed, the broken page reported, ranges loaded")
