"""Replication checks: the staged rows match the source, the target matches the staged rows."""

from collections.abc import Iterator

import dagster as dg

from data_platform.replication.engine import CopyResult

CHECK_COUNTS = "staged_rows_match_source"
CHECK_CHECKSUM = "target_checksum_matches_staged"


def check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(CHECK_COUNTS, asset=key, description="staged rows = source rows"),
        dg.AssetCheckSpec(
            CHECK_CHECKSUM,
            asset=key,
            description="target rows of the staged keys = staged rows (checksum)",
        ),
    ]


def check_results(result: CopyResult) -> Iterator[dg.AssetCheckResult]:
    yield dg.AssetCheckResult(
        check_name=CHECK_COUNTS,
        passed=result.staged_rows == result.source_rows,
        metadata={"source_rows": result.source_rows, "staged_rows": result.staged_rows},
    )
    if result.checksum_match is not None:
        yield dg.AssetCheckResult(check_name=CHECK_CHECKSUM, passed=result.checksum_match)
