"""bootstrap-bucket read back from the S3 server; migrate through the sync engine."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from data_platform.s3sync import SyncOptions
from data_platform.training import LocalStorageBackend, S3StorageBackend
from data_platform.training.bucket import LIFECYCLE_RULE_ID, bootstrap_bucket
from data_platform.training.migrate import migrate
from data_platform_tests.conftest import make_s3_client
from data_platform_tests.training.conftest import CountingProxy


def read_settings(client, bucket: str) -> tuple:
    encryption = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return encryption["Rules"], block, rules


@pytest.fixture
def admin_client(moto_endpoint: str):
    """Bucket administration on moto: SeaweedFS answers NotImplemented to public-access blocks
    and lifecycle rules."""
    return make_s3_client(moto_endpoint)


def test_bootstrap_creates_and_configures_then_changes_nothing(admin_client) -> None:
    s3_client = admin_client
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    dry = bootstrap_bucket(s3_client, bucket, dry_run=True)
    assert [name for name, _ in dry.calls] == [
        "create_bucket",
        "put_bucket_encryption",
        "put_public_access_block",
        "put_bucket_lifecycle_configuration",
    ]
    assert bucket not in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]

    first = bootstrap_bucket(s3_client, bucket, glacier_after_days=90)
    assert len(first.calls) == 4
    rules, block, lifecycle = read_settings(s3_client, bucket)
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert rules[0]["BucketKeyEnabled"] is True
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = lifecycle
    assert rule["ID"] == LIFECYCLE_RULE_ID and rule["Status"] == "Enabled"
    assert rule["Filter"]["Prefix"] == "training/"
    assert rule["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]

    second = bootstrap_bucket(s3_client, bucket, glacier_after_days=90)
    assert second.calls == [] and "nothing changed" in second.summary()
    assert read_settings(s3_client, bucket) == (rules, block, lifecycle)


def test_bootstrap_fixes_only_what_differs_and_keeps_other_rules(
    admin_client, moto_bucket: str
) -> None:
    s3_client, bucket = admin_client, moto_bucket
    other = {
        "ID": "expire-tmp",
        "Status": "Enabled",
        "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Days": 7},
    }
    s3_client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [other]}
    )
    bootstrap_bucket(s3_client, bucket)
    report = bootstrap_bucket(s3_client, bucket, glacier_after_days=30)
    assert [name for name, _ in report.calls] == ["put_bucket_lifecycle_configuration"]
    _, _, rules = read_settings(s3_client, bucket)
    by_id = {rule["ID"]: rule for rule in rules}
    assert by_id["expire-tmp"]["Expiration"] == {"Days": 7}
    assert by_id[LIFECYCLE_RULE_ID]["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER"}]


def test_migrate_skips_identical_files_and_seeds_the_stats_cache(
    tmp_path: Path, bucket: str, counting_proxy: CountingProxy
) -> None:
    local = LocalStorageBackend(tmp_path / "training")
    for task in ("ocr", "qa"):
        for i in range(3):
            local.write_training_samples(
                task, [{"input": f"{task} {i} {n}", "output": n} for n in range(i + 2)]
            )
    client = make_s3_client(counting_proxy.url)
    options = SyncOptions(progress_enabled=False)
    reports = migrate(client, local.root, f"s3://{bucket}/training/", options)
    assert sum(r.transferred for r in reports) == 6 and all(r.ok for r in reports)

    target = S3StorageBackend(bucket, "training/", client=client)
    local_stats = local.get_dataset_stats()
    counting_proxy.reset()
    assert target.get_dataset_stats() == local_stats
    calls = counting_proxy.calls(bucket)
    assert not [c for c in calls if c.startswith(("GET training/ocr", "GET training/qa", "HEAD"))]
    assert sorted(target.list_samples("qa")) == sorted(
        f"s3://{bucket}/training/{local.key_of(p)}" for p in local.list_samples("qa")
    )
    again = migrate(client, local.root, f"s3://{bucket}/training/", options)
    assert sum(r.transferred for r in again) == 0 and sum(r.skipped for r in again) == 6
