"""Warm tier checks, partitioned by month like the warm tier: the manifest reads, and every hot
file of the month is represented exactly once."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from data_platform.dagster_common import check_spec

CHECK_MANIFEST = "manifest_readable"
CHECK_HOT_ONCE = "hot_files_represented_once"


def check_specs(key: dg.AssetKey, partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    return [
        check_spec(CHECK_MANIFEST, key, partitions, "The month's manifest.json reads and parses"),
        check_spec(
            CHECK_HOT_ONCE,
            key,
            partitions,
            "Every hot file of the month is in exactly one live warm file, or pending",
        ),
    ]


def warm_checks(report: Any) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        check_name=CHECK_MANIFEST,
        passed=True,
        metadata={"version": report.manifest.sequence},
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_HOT_ONCE,
        passed=report.ok,
        metadata={
            "hot_files": report.hot_files,
            "pending": len(report.pending),
            "problems": dg.MetadataValue.json(report.problems[:20]),
        },
    )
