"""Demo step: bootstrap the seed's bucket (on moto), write samples for two tasks through the
seed's API (a few with planted PII, masked on write), then `training stats`, `export --split` and
`validate` as a user would run them, and check the results."""

from __future__ import annotations

import json
from typing import Any

from data_platform.demo import DemoContext, DemoFailure, run_job

BUCKET = "merry-training-data"
PREFIX = "training/"
WRITTEN = {"pdf_extraction": 40, "chat_summary": 12}  # samples per task
PLANTED = [
    "담당자 김민수 010-2345-6789로 연락 바랍니다",
    "회신 주소 minsu.kim@example.co.kr",
    "주민등록번호 900101-1234568 확인 요망",
    "결제 카드 4111-1111-1111-1111",
]


def samples(task: str, count: int, repeats: int = 5) -> list[dict]:
    """`count` samples whose last `repeats` repeat earlier ones (same input and output)."""
    rows = []
    for n in range(count):
        base = n if n < count - repeats else n - (count - repeats) + len(PLANTED)
        text = f"{task} 문서 {base}: 주문번호 2024011{base:04d}, 금액 {12_300 + base:,}원"
        if base < len(PLANTED):
            text += " / " + PLANTED[base]
        rows.append({"input": {"text": text}, "output": {"label": f"클래스 {base % 3}"}})
    return rows


def masked_values(backend: Any, task: str) -> int:
    """PII values masked on write, from the files' `pii-*` metadata."""
    return sum(
        int(value)
        for location in backend.list_samples(task)
        for name, value in backend.read_sample(location)["metadata"].items()
        if name.startswith("pii-")
    )


def bootstrap_on_moto(ctx: DemoContext) -> None:
    """bootstrap-bucket sets a public-access block and lifecycle rules, which SeaweedFS (the
    stack's S3) answers NotImplemented: it is shown on a moto server started for this step."""
    from data_platform.devstack import start_moto_server

    moto = start_moto_server()
    try:
        where = ["--endpoint-url", moto.endpoint_url]
        ctx.run_cli("training", "bootstrap-bucket", "--bucket", BUCKET, *where)
        again = ctx.run_cli("training", "bootstrap-bucket", "--bucket", BUCKET, *where)
    finally:
        moto.stop()
    if "nothing changed" not in again.stdout:
        raise DemoFailure("a second bootstrap-bucket changed the bucket again")


def run_demo(ctx: DemoContext) -> None:
    from data_platform.training import S3StorageBackend

    bootstrap_on_moto(ctx)
    ctx.s3_client().create_bucket(Bucket=BUCKET)
    backend = S3StorageBackend(BUCKET, PREFIX, client=ctx.s3_client())
    written = WRITTEN
    masked = 0
    for task, count in written.items():
        rows = samples(task, count)
        backend.write_training_samples(task, rows[: count // 2])
        for row in rows[count // 2 :]:
            backend.write_training_sample(task, row)
        masked += masked_values(backend, task)
    ctx.say(
        f"wrote {sum(written.values())} samples for 2 tasks; {masked} planted PII values masked"
    )
    if masked != 2 * len(PLANTED):
        raise DemoFailure(f"expected {2 * len(PLANTED)} masked PII values, found {masked}")

    bucket = ["--bucket", BUCKET, "--endpoint-url", ctx.s3_endpoint]
    stats = json.loads(ctx.run_cli("training", "stats", "--json", *bucket).stdout)
    counted = {task: entry["samples"] for task, entry in stats["tasks"].items()}
    if counted != written:
        raise DemoFailure(f"stats counted {counted}, the demo wrote {written}")
    ctx.run_cli("training", "stats", *bucket)  # the second one reads only the listing + cache

    out = ctx.workdir / "training" / "pdf_extraction.jsonl"
    split = ["--dedupe", "--split", "train=0.8,val=0.2", "--seed", "42"]
    ctx.run_cli("training", "export", "pdf_extraction", str(out), *split, *bucket)
    exported = {
        name: len((out.parent / f"pdf_extraction.{name}.jsonl").read_text().splitlines())
        for name in ("train", "val")
    }
    if sum(exported.values()) != written["pdf_extraction"] - 5:  # 5 repeat earlier samples
        raise DemoFailure(f"export wrote {exported}, expected the 35 distinct samples")
    ctx.run_cli("training", "validate", "pdf_extraction", *bucket)  # exits 1 on any PII
    ctx.say(f"verified: stats match, export split {exported}, validate found no PII")

    observed = observe_samples(list(written))
    if observed != written:
        raise DemoFailure(f"Dagster observed {observed} samples, the demo wrote {written}")
    ctx.say(f"training_samples_observe_job: Dagster observed the stored samples {observed}")


def environment(_env: dict[str, str]) -> dict[str, str]:
    """The seed's store variables that make the code location's training store this bucket."""
    return {"TRAINING_STORAGE_BACKEND": "s3", "AWS_S3_BUCKET": BUCKET, "TRAINING_S3_PREFIX": PREFIX}


ROW_COUNT = "dagster/row_count"


def observe_samples(tasks: list[str]) -> dict[str, int]:
    """Observe `training/<task>/samples` through the code location's store; the sample counts
    the observations recorded."""
    from data_platform.training.defs import OBSERVE_JOB_NAME, samples_key

    result = run_job(OBSERVE_JOB_NAME, [samples_key(task) for task in tasks])
    if not result.success:
        raise DemoFailure(f"job {OBSERVE_JOB_NAME} failed")
    observations = result.get_asset_observation_events()
    by_key = {
        event.asset_key: event.event_specific_data.asset_observation.metadata[ROW_COUNT].value
        for event in observations
    }
    return {task: by_key.get(samples_key(task)) for task in tasks}
