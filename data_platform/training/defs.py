"""Dagster side of the training store: per task, the stored samples as an observed asset
(`training/<task>/samples`) and a daily dataset (`training/<task>/dataset`) with three checks.
The store is whatever the seed's variables say when a run starts (see backends.backend_from_env).
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import dagster as dg

from data_platform.resources import AwsSessionResource
from data_platform.training.backends import SampleStore, backend_from_env

FIRST_DAY = "2024-01-01"
CHECK_NO_PII = "no_pii"
CHECK_FIELDS = "every_line_has_input_and_output"
CHECK_IDS = "no_duplicate_ids"
_MAX_LISTED = 50  # problems named in check metadata; the count covers all


class TrainingStoreResource(dg.ConfigurableResource):
    """The sample store from TRAINING_STORAGE_BACKEND / TRAINING_LOCAL_DIR / AWS_S3_BUCKET, read
    when a run opens it; S3 clients come from the shared `aws` resource."""

    aws: AwsSessionResource

    def backend(self) -> SampleStore:
        return backend_from_env(client_factory=lambda: self.aws.client("s3"))


def samples_key(task: str) -> dg.AssetKey:
    return dg.AssetKey(["training", task, "samples"])


def dataset_key(task: str) -> dg.AssetKey:
    return dg.AssetKey(["training", task, "dataset"])


def defs(tasks: Sequence[str]) -> dg.Definitions:
    if not tasks:
        return dg.Definitions()
    daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
    assets = [
        asset for task in tasks for asset in (samples_asset(task), dataset_asset(task, daily))
    ]
    return dg.Definitions(
        assets=assets, resources={"training_store": TrainingStoreResource(aws=AwsSessionResource())}
    )


def samples_asset(task: str) -> Any:
    def observe(training_store: TrainingStoreResource) -> dg.ObserveResult:
        stats = training_store.backend().get_dataset_stats(task)
        entry = stats["tasks"].get(task, {"files": 0, "samples": 0, "bytes": 0})
        version = f"{entry['files']}-{entry['samples']}-{entry['bytes']}-{entry.get('last_day')}"
        return dg.ObserveResult(
            data_version=dg.DataVersion(version),
            metadata={
                "files": entry["files"],
                "samples": entry["samples"],
                "bytes": entry["bytes"],
                "first_day": str(entry.get("first_day")),
                "last_day": str(entry.get("last_day")),
            },
        )

    with warnings.catch_warnings():  # observable source assets are "beta" in 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.observable_source_asset(
            key=samples_key(task),
            group_name="training",
            description=f"Stored {task} samples (<store>/{task}/YYYY/MM/DD/*.jsonl); observing "
            "reads counts from metadata and the shared stats cache, never the sample bodies.",
        )(observe)


def dataset_asset(task: str, partitions_def: dg.PartitionsDefinition) -> Any:
    key = dataset_key(task)

    def build(
        context: dg.AssetExecutionContext, training_store: TrainingStoreResource
    ) -> Iterator[Any]:
        from data_platform.training.dataset import build_day_dataset

        day = date.fromisoformat(context.partition_key)
        result = build_day_dataset(training_store.backend(), task, day)
        context.log.info(
            f"{task} {day}: {result.samples} samples from {result.files} files, "
            f"{result.duplicates} duplicates dropped, {len(result.left_out)} lines left out"
        )
        yield dg.MaterializeResult(
            metadata={
                "samples": result.samples,
                "files": result.files,
                "duplicates_dropped": result.duplicates,
                "parquet": result.locations["parquet"],
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
        kinds={"parquet"},
        check_specs=[
            dg.AssetCheckSpec(CHECK_NO_PII, asset=key, description="no PII in the day's samples"),
            dg.AssetCheckSpec(CHECK_FIELDS, asset=key, description="every line has input+output"),
            dg.AssetCheckSpec(CHECK_IDS, asset=key, description="no sample id appears twice"),
        ],
        description=f"The day's {task} samples, deduplicated by input+output and validated, as "
        f"<store>/.datasets/{task}/YYYY-MM-DD.parquet (+ .jsonl).",
    )(build)
