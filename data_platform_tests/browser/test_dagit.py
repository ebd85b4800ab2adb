"""Dagit in headless Chromium against the served demo: what a new user does first.

The tests share one served stack and run in file order: the partitions page is checked before
anything else is materialized, the sensor is switched on last (it would find the test's files).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from data_platform.core.partitions import SnapshotKey
from data_platform.silver.defs import SENSOR_NAME
from data_platform_tests.browser.conftest import ServedDemo
from data_platform_tests.dagit_api import backfills, finished_runs, sensor_state, wait_for

SILVER_ASSET = "silver/silver_stage_1_main"
GANGNAM = ("서울특별시", "강남구")
DEMO_MONTHS = ("2024-04-01", "2024-05-01")  # data_platform.silver.demo loads these
RUN_TIMEOUT_SECONDS = 300


def expected_asset_paths() -> dict[str, set[str]]:
    """Every asset of the code location, by group: derived from the Definitions themselves."""
    from data_platform.definitions import defs

    by_group: dict[str, set[str]] = {}
    for spec in defs.resolve_all_asset_specs():
        by_group.setdefault(spec.group_name or "default", set()).add("/".join(spec.key.path))
    return by_group


def upload_snapshot(demo: ServedDemo, snapshot: SnapshotKey, rows: int) -> None:
    from data_platform.silver.demo import csv_bytes, sample_rows

    content = csv_bytes(sample_rows(snapshot, ["역삼동", "삼성동"], rows), "utf-8")
    key = f"raw/silver_stage_1_main/{snapshot.path()}/deals.csv"
    demo.s3_client().put_object(Bucket=demo.bucket, Key=key, Body=content)


def silver_rows(demo: ServedDemo, snapshot: SnapshotKey) -> int:
    from data_platform.core.postgres import connection

    with connection(demo.pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM public.silver_stage_1_main WHERE source_year = %s "
            "AND source_month = %s AND region = %s AND sigungu = %s",
            (snapshot.year, snapshot.month, snapshot.region, snapshot.sigungu),
        )
        return cur.fetchone()[0]


def partition_tag(snapshot: SnapshotKey) -> str:
    return f"{snapshot.area_key}|{snapshot.month_key}"  # Dagster's multi-partition key string


def open_dialog_for_area(page: Any, area: str) -> Any:
    """The asset's partitions page with `area` picked, then Materialize… and its dialog."""
    page.goto(f"/assets/{SILVER_ASSET}?view=partitions")
    page.get_by_text(area, exact=True).first.click()
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(area, exact=True).first.wait_for()
    return dialog


def test_asset_graph_lists_every_asset(page: Any, tmp_path: Path) -> None:
    expected = expected_asset_paths()
    assert expected, "the Definitions hold no assets"
    missing = []
    for group, paths in sorted(expected.items()):
        page.goto(f"/locations/data_platform/asset-groups/{group}")
        # Zoomed out, Dagit draws a node with its name only (the last part of its key), no link.
        names = Counter(path.rsplit("/", 1)[-1] for path in paths)
        page.get_by_text(next(iter(names)), exact=True).first.wait_for()
        page.screenshot(path=str(tmp_path / f"graph-{group}.png"))
        missing += [
            f"{group}: {name}"
            for name, count in names.items()
            if page.get_by_text(name, exact=True).count() < count
        ]
    assert not missing, f"assets missing from the asset graph: {missing}"


def test_partitions_page_shows_demo_partitions_materialized(page: Any, tmp_path: Path) -> None:
    page.goto(f"/assets/{SILVER_ASSET}?view=partitions")
    page.get_by_text("Materialized (4)").wait_for()  # the demo's 2 months x 2 areas
    for status in ("Missing (", "Failed ("):  # list only what is materialized
        page.get_by_text(status).click()
    page.get_by_text("서울특별시~강남구", exact=True).first.click()
    months = page.get_by_text("2024-0")
    months.first.wait_for()
    page.screenshot(path=str(tmp_path / "partitions.png"))
    listed = {text.strip() for text in months.all_inner_texts()}
    assert listed == set(DEMO_MONTHS)


def test_materialize_one_partition_from_the_dialog(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    snapshot = SnapshotKey(2024, 6, *GANGNAM)
    upload_snapshot(served_demo, snapshot, rows=321)
    assert silver_rows(served_demo, snapshot) == 0

    dialog = open_dialog_for_area(page, snapshot.area_key)
    month = dialog.get_by_placeholder("ex: 2010-01-01", exact=False)
    month.fill(snapshot.month_key)
    month.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    launch.wait_for()
    page.screenshot(path=str(tmp_path / "dialog.png"))
    launch.click()

    runs = wait_for(
        "the launched run to finish",
        lambda: finished_runs(served_demo.url, "dagster/partition", partition_tag(snapshot)),
        RUN_TIMEOUT_SECONDS,
    )
    assert [run["status"] for run in runs] == ["SUCCESS"]
    page.goto(f"/runs/{runs[0]['runId']}")
    page.get_by_text("Success").first.wait_for()
    page.screenshot(path=str(tmp_path / "run.png"))
    assert silver_rows(served_demo, snapshot) == 321


def test_backfill_of_two_partitions_from_the_dialog(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    snapshots = [SnapshotKey(2024, 7, *GANGNAM), SnapshotKey(2024, 8, *GANGNAM)]
    for rows, snapshot in enumerate(snapshots, start=100):
        upload_snapshot(served_demo, snapshot, rows=rows)
    before = {backfill["id"] for backfill in backfills(served_demo.url)}

    dialog = open_dialog_for_area(page, snapshots[0].area_key)
    months = ", ".join(s.month_key for s in snapshots)
    month = dialog.get_by_placeholder("ex: 2010-01-01", exact=False)
    month.fill(months)
    month.press("Enter")
    dialog.get_by_text("2 partitions").wait_for()
    page.screenshot(path=str(tmp_path / "dialog.png"))
    dialog.get_by_role("button", name="Launch backfill").click()

    def completed() -> dict[str, Any] | None:
        new = [b for b in backfills(served_demo.url) if b["id"] not in before]
        return new[0] if new and new[0]["status"] != "REQUESTED" else None

    backfill = wait_for("the backfill to finish", completed, RUN_TIMEOUT_SECONDS)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert sorted(backfill["partitionNames"]) == sorted(partition_tag(s) for s in snapshots)
    page.goto(f"/runs/b/{backfill['id']}")
    page.get_by_text("Completed", exact=False).first.wait_for()
    page.screenshot(path=str(tmp_path / "backfill.png"))
    assert [silver_rows(served_demo, s) for s in snapshots] == [100, 101]


def test_switching_the_sensor_on_makes_it_tick(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    assert sensor_state(served_demo.url, SENSOR_NAME)["status"] == "STOPPED"
    page.goto(f"/locations/data_platform/sensors/{SENSOR_NAME}")
    page.get_by_text("Sensor has never run").wait_for()
    switch = page.locator("input[type=checkbox]")  # drawn by its label: click that
    switch.locator("xpath=..").click()
    assert switch.is_checked()

    def finished_tick() -> dict[str, Any] | None:
        state = sensor_state(served_demo.url, SENSOR_NAME)
        done = [tick for tick in state["ticks"] if tick["status"] != "STARTED"]
        return state if done else None

    state = wait_for(
        "a tick of the switched-on sensor", finished_tick, RUN_TIMEOUT_SECONDS, every=2
    )
    assert state["status"] == "RUNNING"
    assert state["ticks"][-1]["status"] in ("SUCCESS", "SKIPPED"), state
    page.reload()
    page.get_by_text("Latest tick").wait_for()  # the sensor page has loaded
    expect(page.get_by_text("Sensor has never run")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "sensor.png"))
