"""Dagster assets per provider: `tiers/<provider>/hot` (daily) and `tiers/<provider>/warm`
(monthly), the warm one requested by a sensor whenever a hot day lands.

10-minute slots are not partitions (52,560 a year per provider, far past what Dagster's UI and
storage handle well): a daily run writes every slot of its day that is missing, a monthly run
compacts every hot file of its month.
"""

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from data_platform.resources import AwsSessionResource, ObjectStoreResource

START_DATE = "2026-01-01"
MAX_CONFLICT_RETRIES = 6


class TiersStoreResource(ObjectStoreResource):
    """The store of the hot and warm tiers, and the environment (`test` → keys under test/)."""

    environment: str = "production"


def hot_key(provider: str) -> dg.AssetKey:
    return dg.AssetKey(["tiers", provider, "hot"])


def warm_key(provider: str) -> dg.AssetKey:
    return dg.AssetKey(["tiers", provider, "warm"])


def conflict_backoff(retry_number: int) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 … seconds, each scaled by 0.5-1.5."""
    return 2.0 * 2**retry_number * random.uniform(0.5, 1.5)


def hot_asset(provider: str, partitions: dg.DailyPartitionsDefinition) -> Any:
    @dg.asset(
        key=hot_key(provider),
        partitions_def=partitions,
        group_name="tiers",
        kinds={"parquet"},
        description=f"{provider} hot tier: one Parquet change file per 10-minute raw slot.",
    )
    def _hot(
        context: dg.AssetExecutionContext,
        raw_store: ObjectStoreResource,
        tiers_store: TiersStoreResource,
    ) -> dg.MaterializeResult:
        from data_platform.tiers.ingest import ingest_raw

        window = context.partition_time_window
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
                "raw_slots": result.slots,
                "slots_written": result.written,
                "slots_already_written": result.unchanged,
                "change_rows": result.rows,
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
        kinds={"parquet"},
        description=f"{provider} warm tier: the month's hot files compacted 8-way under "
        "manifest.json (If-Match); a concurrent change to the manifest is retried.",
        check_specs=[
            dg.AssetCheckSpec("manifest_readable", asset=key),
            dg.AssetCheckSpec("hot_files_represented_once", asset=key),
        ],
    )
    def _warm(context: dg.AssetExecutionContext, tiers_store: TiersStoreResource) -> Iterator[Any]:
        from data_platform.tiers import ConcurrencyConflictError, compact_month
        from data_platform.tiers.manifest import CorruptManifestError
        from data_platform.tiers.verify import verify_month

        month = context.partition_key[:7]
        store, environment = tiers_store.store(), tiers_store.environment
        try:
            result = compact_month(provider, month, store=store, environment=environment)
        except ConcurrencyConflictError as exc:
            wait = conflict_backoff(context.retry_number)
            context.log.warning(f"{exc}; retrying in {wait:.1f} s")
            raise dg.RetryRequested(max_retries=MAX_CONFLICT_RETRIES, seconds_to_wait=wait) from exc
        yield dg.MaterializeResult(
            metadata={
                "hot_files_compacted": len(result.compacted_keys),
                "files_added": len(result.files_added),
                "files_removed": len(result.files_removed),
                "bytes_written": result.bytes_written,
                "level_sizes": dg.MetadataValue.json(result.level_sizes),
                "manifest_version": result.sequence,
                "attempts": result.attempts,
            }
        )
        try:
            report = verify_month(provider, month, store=store, environment=environment)
        except CorruptManifestError as exc:
            yield dg.AssetCheckResult(
                check_name="manifest_readable", passed=False, metadata={"error": str(exc)}
            )
            return
        yield dg.AssetCheckResult(
            check_name="manifest_readable",
            passed=True,
            metadata={"version": report.manifest.sequence},
        )
        yield dg.AssetCheckResult(
            check_name="hot_files_represented_once",
            passed=report.ok,
            metadata={
                "hot_files": report.hot_files,
                "pending": len(report.pending),
                "problems": dg.MetadataValue.json(report.problems[:20]),
            },
        )

    return _warm


def warm_after_hot_sensor(provider: str, job: Any) -> Any:
    @dg.asset_sensor(
        asset_key=hot_key(provider),
        job=job,
        name=f"tiers_{provider}_warm_after_hot",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry) -> Any:
        day = asset_event.dagster_event.partition if asset_event.dagster_event else None
        if not day:
            return dg.SkipReason("hot materialization without a partition")
        return dg.RunRequest(
            run_key=f"{provider}-{day}-{asset_event.timestamp}", partition_key=f"{day[:7]}-01"
        )

    return _sensor


def hot_schedule(provider: str, job: Any) -> dg.ScheduleDefinition:
    """Every 10 minutes (2 minutes past the slot), bring today's hot files up to date."""

    @dg.schedule(cron_schedule="2-59/10 * * * *", job=job, name=f"tiers_{provider}_hot_today")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        moment = context.scheduled_execution_time or datetime.now(UTC)
        return dg.RunRequest(partition_key=moment.astimezone(UTC).strftime("%Y-%m-%d"))

    return _schedule


def defs(providers: Sequence[str] = ("aws", "azure", "gcp")) -> dg.Definitions:
    """Assets, checks, sensor and schedule per provider, and the `tiers_store` resource
    (DATA_PLATFORM_TIERS_URL, read when a run starts)."""
    assets, sensors, schedules, jobs = [], [], [], []
    for provider in providers:
        daily = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
        monthly = dg.MonthlyPartitionsDefinition(start_date=START_DATE, end_offset=1)
        assets += [hot_asset(provider, daily), warm_asset(provider, monthly)]
        hot_job = dg.define_asset_job(f"tiers_{provider}_hot", selection=[hot_key(provider)])
        warm_job = dg.define_asset_job(f"tiers_{provider}_warm", selection=[warm_key(provider)])
        jobs += [hot_job, warm_job]
        sensors.append(warm_after_hot_sensor(provider, warm_job))
        schedules.append(hot_schedule(provider, hot_job))
    store = TiersStoreResource(url=dg.EnvVar("DATA_PLATFORM_TIERS_URL"), aws=AwsSessionResource())
    return dg.Definitions(
        assets=assets,
        sensors=sensors,
        schedules=schedules,
        jobs=jobs,
        resources={"tiers_store": store},
    )
