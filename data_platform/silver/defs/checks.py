"""Silver checks: rows in Postgres against rows in the raw files, and files unchanged by the load.

Partitioned like the table: a run of one partition (every sensor run) records the check on that
partition; a backfill run of a range records it once for the range (Dagster 1.13 gives a check
result no partition of its own).
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from data_platform.dagster_common import check_spec

if TYPE_CHECKING:
    from data_platform.silver.sources import SourceFile

CHECK_ROWS = "rows_match_files"
CHECK_CURRENT = "loaded_files_are_current"


def check_specs(
    key: dg.AssetKey, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    return [
        check_spec(
            CHECK_ROWS,
            key,
            partitions_def,
            "Rows in Postgres = rows in the raw files, counted apart from the load (Parquet "
            "footers, a quote-aware scan of CSV bytes)",
        ),
        check_spec(
            CHECK_CURRENT,
            key,
            partitions_def,
            "After the load, the partition's raw files are still the ones loaded (same keys and "
            "etags): no file came, went or changed meanwhile",
        ),
    ]


def check_results(
    rows_loaded: int,
    mismatches: dict[str, dict[str, int]],
    changed: dict[str, dict[str, list[str]]],
) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        check_name=CHECK_ROWS,
        passed=not mismatches,
        metadata={"rows_loaded": rows_loaded, "mismatches": dg.MetadataValue.json(mismatches)},
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_CURRENT,
        passed=not changed,
        metadata={"changed_during_load": dg.MetadataValue.json(changed)},
    )


def file_changes(before: "list[SourceFile]", after: "list[SourceFile]") -> dict[str, list[str]]:
    """Keys added, removed or rewritten (other etag) between two listings; {} when none."""
    old = {f.name: f.etag for f in before}
    new = {f.name: f.etag for f in after}
    difference = {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "rewritten": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
    }
    return {kind: keys for kind, keys in difference.items() if keys}
