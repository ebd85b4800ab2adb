"""Dagster side of the training store, per task: the producer writing samples (external,
`training/<task>/<task>_producer`), the stored samples as an observed asset
(`training/<task>/<task>_samples`) and a daily dataset (`training/<task>/<task>_dataset`) with
three checks, built on cron. The store is whatever the seed's variables say when a run starts
(see backends.backend_from_env).
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg

from data_platform.core.objectstore import ObjectStoreError
from data_platform.dagster_common import (
    OWNER,
    asset_job,
    check_spec,
    external_asset,
    failure_on,
    on_cron_latest,
    row_count,
    scoped_key,
    table_schema,
    tags,
    uri,
)
from data_platform.resources import AwsSessionResource
from data_platform.training.backends import SampleStore, backend_from_env
from data_platform.training.errors import TrainingError

FIRST_DAY = "2024-01-01"
CHECK_NO_PII = "no_pii"
CHECK_FIELDS = "every_line_has_input_and_output"
CHECK_IDS = "no_duplicate_ids"
JOB_NAME = "training_job"
OBSERVE_JOB_NAME = "training_samples_observe_job"
_MAX_LISTED = 50  # problems named in check metadata; the count covers all
# 00:10 UTC: yesterday's dataset, now complete, and today's so far; missed days are not caught up.
CRON = "10 0 * * *"
CONDITION = on_cron_latest(CRON, lookback=timedelta(days=2))  # ends within 2 days of now
FRESHNESS = dg.FreshnessPolicy.cron(deadline_cron="0 2 * * *", lower_bound_delta=timedelta(hours=2))
DATASET_COLUMNS = (
    ("id", "string"),
    ("task", "string"),
    ("created_at", "timestamp (UTC)"),
    ("input", "string (JSON)"),
    ("output", "string (JSON)"),
    ("metadata", "string (JSON)"),
)


class TrainingStoreResource(dg.ConfigurableResource):
    """The sample store from TRAINING_STORAGE_BACKEND / TRAINING_LOCAL_DIR / AWS_S3_BUCKET, read
    when a run opens it; S3 clients come from the shared `aws` resource."""

    aws: AwsSessionResource

    def backend(self) -> SampleStore:
        return backend_from_env(client_factory=lambda: self.aws.client("s3"))


def producer_key(task: str) -> dg.AssetKey:
    return scoped_key("training", task, "producer")


def samples_key(task: str) -> dg.AssetKey:
    return scoped_key("training", task, "samples")


def dataset_key(task: str) -> dg.AssetKey:
    return scoped_key("training", task, "dataset")


def defs(tasks: Sequence[str]) -> dg.Definitions:
    if not tasks:
        return dg.Definitions()
    daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
    assets = [
        asset
        for task in tasks
        for asset in (producer_spec(task), samples_asset(task), dataset_asset(task, daily))
    ]
    jobs = [
        asset_job(JOB_NAME, map(dataset_key, tasks), "Build one day's datasets."),
        asset_job(OBSERVE_JOB_NAME, map(samples_key, tasks), "Count the stored samples."),
    ]
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        resources={"training_store": TrainingStoreResource(aws=AwsSessionResource())},
    )


def producer_spec(task: str) -> dg.AssetSpec:
    return external_asset(
        producer_key(task),
        domain="training",
        layer="source",
        description=f"The service that writes {task} samples through `write_training_sample` "
        "(outside the platform).",
    )


def samples_asset(task: str) -> Any:
    key = samples_key(task)

    def observe(training_store: TrainingStoreResource) -> dg.ObserveResult:
        stats = training_store.backend().get_dataset_stats(task)
        entry = stats["tasks"].get(task, {"files": 0, "samples": 0, "bytes": 0})
        version = f"{entry['files']}-{entry['samples']}-{entry['bytes']}-{entry.get('last_day')}"
        return dg.ObserveResult(
            asset_key=key,
            data_version=dg.DataVersion(version),
            metadata={
                **row_count(entry["samples"]),
                "files": entry["files"],
                "bytes": entry["bytes"],
                "first_day": str(entry.get("first_day")),
                "last_day": str(entry.get("last_day")),
            },
        )

    spec = dg.AssetSpec(
        key,
        deps=[producer_key(task)],
        group_name="training",
        kinds={"s3"},
        owners=[OWNER],
        tags=tags("training", "raw"),
        description=f"Stored {task} samples (`{task}/YYYY/MM/DD/*.jsonl` in the sample store); "
        "observing reads counts from metadata and the shared stats cache, never the sample "
        "bodies.",
    )
    with warnings.catch_warnings():  # observable source assets are "beta" in 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.multi_observable_source_asset(name=f"{task}_samples", specs=[spec])(observe)


def dataset_asset(task: str, partitions_def: dg.PartitionsDefinition) -> Any:
    key = dataset_key(task)

    def build(
        context: dg.AssetExecutionContext, training_store: TrainingStoreResource
    ) -> Iterator[Any]:
        from data_platform.training.dataset import build_day_dataset

        day = date.fromisoformat(context.partition_key)
        with failure_on((TrainingError, ObjectStoreError)):
            result = build_day_dataset(training_store.backend(), task, day)
        context.log.info(
            f"{task} {day}: {result.samples} samples from {result.files} files, "
            f"{result.duplicates} duplicates dropped, {len(result.left_out)} lines left out"
        )
        yield dg.MaterializeResult(
            metadata={
                **row_count(result.samples),
                **uri(result.locations["parquet"]),
                "files": result.files,
                "duplicates_dropped": result.duplicates,
                "jsonl": result.locations["jsonl"],
            }
        )
        for name, problems in (
            (CHECK_NO_PII, result.pii),
            (CHECK_FIELDS, result.left_out),
            (CHECK_IDS, result.duplicate_ids),
        ):
            yield dg.AssetCheckResult(
                check_name=name,
                passed=not problems,
                metadata={
                    "problems": len(problems),
                    "where": dg.MetadataValue.json([str(p) for p in problems[:_MAX_LISTED]]),
                },
            )

    return dg.asset(
        key=key,
        deps=[samples_key(task)],
        partitions_def=partitions_def,
        group_name="training",
        kinds={"parquet", "s3"},
        owners=[OWNER],
        tags=tags("training", "dataset"),
        metadata={"dagster/column_schema": table_schema(DATASET_COLUMNS)},
        automation_condition=CONDITION,
        freshness_policy=FRESHNESS,
        check_specs=[
            check_spec(CHECK_NO_PII, key, partitions_def, "no PII in the day's samples"),
            check_spec(CHECK_FIELDS, key, partitions_def, "every line has input+output"),
            check_spec(CHECK_IDS, key, partitions_def, "no sample id appears twice"),
        ],
        description=f"The day's {task} samples, deduplicated by input+output and validated, as "
        f"`.datasets/{task}/YYYY-MM-DD.parquet` (and `.jsonl`) in the sample store.",
    )(build)
