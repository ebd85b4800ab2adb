"""Tiers assets per provider: the provider's raw 10-minute snapshots (external), the daily hot
tier and the monthly warm tier, with the store resource they write to.

10-minute slots are not partitions (52,560 a year per provider, far past what Dagster's UI and
storage handle well): a daily run writes every slot of its day that is missing, a monthly run
compacts every hot file of its month.
"""

import random
from collections.abc import Iterator
from typing import Any

import dagster as dg

from data_platform.core.objectstore import ObjectStoreError
from data_platform.dagster_common import (
    OWNER,
    external_asset,
    failure_on,
    row_count,
    scoped_key,
    tags,
    uri,
)
from data_platform.resources import ObjectStoreResource
from data_platform.tiers.config import TiersError, get_config
from data_platform.tiers.defs.automation import (
    HOT_CONDITION,
    HOT_FRESHNESS,
    WARM_CONDITION,
    WARM_FRESHNESS,
)
from data_platform.tiers.defs.checks import CHECK_MANIFEST, check_specs, warm_checks

MAX_CONFLICT_RETRIES = 6


class TiersStoreResource(ObjectStoreResource):
    """The store of the hot and warm tiers, and the environment (`test` → keys under test/)."""

    environment: str = "production"

    def location(self, prefix: str) -> str:
        return f"{self.url.rstrip('/')}/{prefix}/"


def raw_snapshots_key(provider: str) -> dg.AssetKey:
    return scoped_key("tiers", provider, "raw_snapshots")


def hot_key(provider: str) -> dg.AssetKey:
    return scoped_key("tiers", provider, "hot")


def warm_key(provider: str) -> dg.AssetKey:
    return scoped_key("tiers", provider, "warm")


def column_schema(provider: str) -> dict[str, Any]:
    from data_platform.dagster_common import table_schema

    columns = get_config(provider).schema_dtypes.items()
    return {"dagster/column_schema": table_schema((n, str(t)) for n, t in columns)}


def conflict_backoff(retry_number: int) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 … seconds, each scaled by 0.5-1.5."""
    return 2.0 * 2**retry_number * random.uniform(0.5, 1.5)


def raw_snapshots_spec(provider: str) -> dg.AssetSpec:
    return external_asset(
        raw_snapshots_key(provider),
        domain="tiers",
        layer="raw",
        kind="s3",
        description=f"{provider}'s raw 10-minute snapshots in the raw store, "
        f"`rawdata/{provider}/YYYY/MM/DD/HH-MM.parquet` (or `.csv.gz`); written by the "
        "collector outside the platform.",
    )


def hot_asset(provider: str, partitions: dg.DailyPartitionsDefinition) -> Any:
    @dg.asset(
        key=hot_key(provider),
        deps=[raw_snapshots_key(provider)],
        partitions_def=partitions,
        group_name="tiers",
        kinds={"parquet", "s3"},
        owners=[OWNER],
        tags=tags("tiers", "hot"),
        metadata=column_schema(provider),
        automation_condition=HOT_CONDITION,
        freshness_policy=HOT_FRESHNESS,
        description=f"{provider} hot tier: one Parquet change file per 10-minute raw slot.",
    )
    def _hot(
        context: dg.AssetExecutionContext,
        raw_store: ObjectStoreResource,
        tiers_store: TiersStoreResource,
    ) -> dg.MaterializeResult:
        from data_platform.tiers.ingest import ingest_raw

        window = context.partition_time_window
        with failure_on((TiersError, ObjectStoreError)):
            prefix = get_config(provider).hot_prefix(tiers_store.environment)
            result = ingest_raw(
                provider,
                window.start,
                window.end,
                raw_store=raw_store.store(),
                store=tiers_store.store(),
                environment=tiers_store.environment,
            )
        context.log.info(f"{result.slots} raw slots, {result.written} hot files written")
        return dg.MaterializeResult(
            metadata={
                **row_count(result.rows),  # change rows written this run
                **uri(tiers_store.location(prefix)),
                "raw_slots": result.slots,
                "slots_written": result.written,
                "slots_already_written": result.unchanged,
            }
        )

    return _hot


def warm_asset(provider: str, partitions: dg.MonthlyPartitionsDefinition) -> Any:
    key = warm_key(provider)

    @dg.asset(
        key=key,
        deps=[hot_key(provider)],
        partitions_def=partitions,
        group_name="tiers",
        kinds={"parquet", "s3"},
        owners=[OWNER],
        tags=tags("tiers", "warm"),
        metadata=column_schema(provider),
        automation_condition=WARM_CONDITION,
        freshness_policy=WARM_FRESHNESS,
        description=f"{provider} warm tier: the month's hot files compacted 8-way under "
        "`manifest.json` (If-Match); a concurrent change to the manifest, or a commit whose "
        "outcome cannot be told, is retried.",
        check_specs=check_specs(key, partitions),
    )
    def _warm(context: dg.AssetExecutionContext, tiers_store: TiersStoreResource) -> Iterator[Any]:
        from data_platform.tiers import ConcurrencyConflictError, compact_month
        from data_platform.tiers.manifest import CommitOutcomeUnknown, CorruptManifestError
        from data_platform.tiers.verify import verify_month

        month = context.partition_key[:7]
        store, environment = tiers_store.store(), tiers_store.environment
        with failure_on((TiersError, ObjectStoreError)):
            prefix = get_config(provider).warm_prefix(environment)
            try:
                result = compact_month(provider, month, store=store, environment=environment)
            # Both leave the manifest as it was committed; the retry re-reads its head.
            except (ConcurrencyConflictError, CommitOutcomeUnknown) as exc:
                wait = conflict_backoff(context.retry_number)
                context.log.warning(f"{exc}; retrying in {wait:.1f} s")
                raise dg.RetryRequested(
                    max_retries=MAX_CONFLICT_RETRIES, seconds_to_wait=wait
                ) from exc
        try:
            report = verify_month(provider, month, store=store, environment=environment)
        except CorruptManifestError as exc:
            yield dg.MaterializeResult(metadata=_compaction_metadata(result))
            yield dg.AssetCheckResult(
                check_name=CHECK_MANIFEST, passed=False, metadata={"error": str(exc)}
            )
            return
        rows = sum(entry.rows or 0 for entry in report.manifest.live_files())
        yield dg.MaterializeResult(
            metadata={
                **row_count(rows),  # rows in the month's live warm files
                **uri(tiers_store.location(prefix)),
                **_compaction_metadata(result),
            }
        )
        yield from warm_checks(report)

    return _warm


def _compaction_metadata(result: Any) -> dict[str, Any]:
    return {
        "hot_files_compacted": len(result.compacted_keys),
        "files_added": len(result.files_added),
        "files_removed": len(result.files_removed),
        "bytes_written": result.bytes_written,
        "level_sizes": dg.MetadataValue.json(result.level_sizes),
        "manifest_version": result.sequence,
        "attempts": result.attempts,
    }
