"""What the served demo shows beyond the silver partitions: the lineage from raw files to the
serving copy, unique node labels, row counts and columns, automation and freshness, and the
training samples' counts. Asset keys and labels come from Dagit's GraphQL API, not from here;
edges are read there too (what the graph draws; zoomed out, Dagit shortens long labels).

Read-only: these tests look at the demo's state and change nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from data_platform_tests.browser.conftest import ServedDemo
from data_platform_tests.dagit_api import AssetNode, asset_nodes

GLOBAL_LINEAGE = "/asset-groups"
# Tests of what the `dagit` branch adds (keys, metadata, automation): expected to fail until it
# is merged; strict, so a pass then fails the run until the marker is removed.
DEMO_PARTITION = ("서울특별시~강남구", "2024-04-01", 1_200)  # area, month, rows (silver.demo)


def nodes_in(demo: ServedDemo, group: str) -> list[AssetNode]:
    found = [node for node in asset_nodes(demo.url) if node.group == group]
    assert found, f"no assets in group {group!r}"
    return found


def asset_url(node: AssetNode) -> str:
    return f"/assets/{node.path}"


def open_global_lineage(page: Any, groups: set[str]) -> None:
    """Dagit's global lineage with every group expanded (it draws them collapsed)."""
    page.goto(GLOBAL_LINEAGE)
    for group in sorted(groups):
        page.get_by_text(group, exact=True).last.wait_for()
    page.mouse.click(1500, 950, button="right")  # the canvas's menu
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.wait_for_timeout(2000)  # the graph's layout animation


def test_serving_copy_is_drawn_downstream_of_silver(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    (silver,) = nodes_in(served_demo, "silver")
    (serving,) = nodes_in(served_demo, "replication")
    assert silver.path in serving.upstream, f"{serving.path} reads {set(serving.upstream)}"
    open_global_lineage(page, {silver.group, serving.group})
    page.screenshot(path=str(tmp_path / "global-lineage.png"))


def test_each_hot_tier_reads_its_raw_source(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    nodes = {node.path: node for node in asset_nodes(served_demo.url)}
    hot = [n for n in nodes.values() if n.group == "tiers" and "hot" in n.path and n.materializable]
    assert hot, "no hot tier assets"
    unsourced = [n.path for n in hot if not any(not nodes[up].materializable for up in n.upstream)]
    assert not unsourced, f"hot tiers without an external raw source upstream: {unsourced}"
    open_global_lineage(page, {"tiers"})
    page.screenshot(path=str(tmp_path / "global-lineage.png"))


def test_node_labels_are_unique(page: Any, served_demo: ServedDemo, tmp_path: Path) -> None:
    nodes = asset_nodes(served_demo.url)
    open_global_lineage(page, {node.group for node in nodes})
    page.screenshot(path=str(tmp_path / "global-lineage.png"))
    labels = Counter(node.label for node in nodes)
    assert not [label for label, count in labels.items() if count > 1], labels


def test_silver_partition_shows_row_count_and_columns(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    (silver,) = nodes_in(served_demo, "silver")
    area, month, rows = DEMO_PARTITION
    page.goto(f"{asset_url(silver)}?view=partitions")
    for status in ("Missing (", "Failed ("):  # list only what is materialized
        page.get_by_text(status).click()
    page.get_by_text(area, exact=True).first.click()
    page.get_by_text(month, exact=True).first.click()
    page.get_by_text("dagster/row_count").first.wait_for()
    page.screenshot(path=str(tmp_path / "partition.png"), full_page=True)
    expect(page.get_by_text(re.compile(f"^({rows}|{rows:,})$")).first).to_be_visible()
    page.goto(asset_url(silver))  # the columns are the definition's, on the asset's overview
    page.get_by_text("record_id", exact=True).first.wait_for()
    page.screenshot(path=str(tmp_path / "columns.png"), full_page=True)
    for column in ("record_id", "price_krw", "contract_date"):
        expect(page.get_by_text(column, exact=True).first).to_be_visible()


def test_automation_page_lists_the_automation_conditions(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    automated = [node for node in asset_nodes(served_demo.url) if node.automation_condition]
    assert automated, "no asset has an automation condition"
    from data_platform.definitions import AUTOMATION_SENSOR, HOT_TIERS_SENSOR

    page.goto("/automation")
    page.get_by_text(AUTOMATION_SENSOR, exact=True).first.wait_for()
    expect(page.get_by_text(HOT_TIERS_SENSOR, exact=True).first).to_be_visible()
    page.screenshot(path=str(tmp_path / "automation.png"))
    # The asset's overview names its condition and the sensor that evaluates it ...
    page.goto(asset_url(automated[0]))
    page.get_by_text(automated[0].automation_condition or "", exact=True).first.wait_for()
    expect(page.get_by_text(AUTOMATION_SENSOR, exact=True).first).to_be_visible()
    page.screenshot(path=str(tmp_path / "asset-overview.png"), full_page=True)
    # ... and its Automation tab lists that sensor's evaluations of it.
    page.goto(f"{asset_url(automated[0])}?view=automation")
    page.get_by_text(re.compile("^(Not requested|Requested)")).first.wait_for()
    page.screenshot(path=str(tmp_path / "asset-automation.png"), full_page=True)


def test_parts_prices_show_their_freshness(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    (prices,) = [node for node in nodes_in(served_demo, "parts") if node.label.endswith("prices")]
    assert prices.has_freshness_policy, f"{prices.path} has no freshness policy"
    page.goto(asset_url(prices))
    page.get_by_text("Freshness", exact=False).first.wait_for()
    page.screenshot(path=str(tmp_path / "prices.png"), full_page=True)


def test_training_samples_show_their_observed_count(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    from data_platform.training.demo import WRITTEN

    samples = [node for node in nodes_in(served_demo, "training") if node.observable]
    task = "pdf_extraction"
    (node,) = [n for n in samples if task in n.path.split("/")]
    page.goto(asset_url(node))
    page.get_by_text("Latest observation").first.wait_for()
    page.get_by_text("Row count", exact=True).first.wait_for()  # dagster/row_count
    page.screenshot(path=str(tmp_path / "samples.png"), full_page=True)
    expect(page.get_by_text("Never observed")).to_have_count(0)
    expect(page.get_by_text(str(WRITTEN[task]), exact=True).first).to_be_visible()


def test_replication_group_shows_the_serving_copy_materialized(
    page: Any, served_demo: ServedDemo, tmp_path: Path
) -> None:
    (serving,) = nodes_in(served_demo, "replication")
    page.goto(asset_url(serving))
    page.get_by_text("Latest materialization", exact=False).first.wait_for()
    page.screenshot(path=str(tmp_path / "serving.png"), full_page=True)
    expect(page.get_by_text("Never materialized")).to_have_count(0)
