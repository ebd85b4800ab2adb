"""Commits whose outcome the client cannot know: the server applied the head PUT, its reply lost.

A proxy in front of the real S3 server forwards the manifest head's conditional PUT and closes the
connection instead of replying; the client's retry then meets 412 from its own write. The commit
must find out from the head that it happened and keep every file the head names.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import Message

import polars as pl
import pytest

from data_platform.core.objectstore import ObjectStoreError, object_store_from_url
from data_platform.tiers import compact_month, read_changes, run_compaction
from data_platform.tiers.manifest import FANOUT
from data_platform.tiers.verify import verify_month
from data_platform_tests.conftest import make_s3_client
from data_platform_tests.faulty_proxy import Faults, FaultyProxy
from data_platform_tests.tiers.conftest import START, same_rows, upload_slots


def drop_first_head_put(condition: str):
    """A drop_reply predicate: the first PUT of a manifest head carrying `condition`."""
    dropped: list[str] = []

    def drop(method: str, path: str, headers: Message) -> bool:
        head_put = method == "PUT" and path.endswith("/manifest.json") and condition in headers
        if head_put and not dropped:
            dropped.append(path)
            return True
        return False

    return drop


@pytest.mark.parametrize(
    ("condition", "compacted_before"),
    [("If-None-Match", 0), ("If-Match", FANOUT - 1)],
    ids=["first-commit", "later-commit"],
)
def test_lost_reply_to_an_applied_head_put_keeps_every_file_the_head_names(
    s3_client, s3_endpoint, bucket, condition, compacted_before
):
    direct = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: s3_client)
    slots = list(upload_slots(direct, FANOUT))
    for slot, key, _ in slots[:compacted_before]:  # so the next head PUT carries If-Match
        run_compaction(key, slot, "aws", store=direct)
    faults = Faults(drop_reply=drop_first_head_put(condition))
    with FaultyProxy(s3_endpoint, faults) as proxy:
        client = make_s3_client(proxy.endpoint_url)
        proxied = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: client)
        result = compact_month("aws", "2026-01", store=proxied)
    assert faults.replies_dropped == 1  # the fault landed on the head PUT
    report = verify_month("aws", "2026-01", store=direct)
    assert report.ok and not report.pending, report.problems
    assert len(result.compacted_keys) == FANOUT - compacted_before
    merged = [e.key for e in report.manifest.live_files() if e.level == 1]
    assert len(merged) == 1 and direct.exists(merged[0])
    assert direct.exists(report.manifest.version_key)
    got = read_changes("aws", START, START + timedelta(days=1), store=direct)
    uploaded = [frame.with_columns(pl.lit(slot).alias("Time")) for slot, _, frame in slots]
    assert same_rows(got, pl.concat(uploaded))


def test_an_outcome_the_head_cannot_tell_deletes_nothing(s3_client, s3_endpoint, bucket):
    direct = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: s3_client)
    slots = list(upload_slots(direct, FANOUT))
    head_put = drop_first_head_put("If-None-Match")
    seen: list[str] = []

    def drop(method: str, path: str, headers: Message) -> bool:
        """The head PUT lands unanswered, then no read of the head gets an answer either."""
        if seen or head_put(method, path, headers):
            seen.append(f"{method} {path}")
            return path.endswith("/manifest.json")
        return False

    with FaultyProxy(s3_endpoint, Faults(drop_reply=drop)) as proxy:
        client = make_s3_client(proxy.endpoint_url)
        proxied = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: client)
        with pytest.raises(ObjectStoreError):
            compact_month("aws", "2026-01", store=proxied)
    report = verify_month("aws", "2026-01", store=direct)
    assert report.ok and not report.pending, report.problems  # every file it names is there
    assert any(s.startswith("GET") for s in seen)  # the head was re-read and that failed too
    assert direct.exists(report.manifest.version_key)
    assert compact_month("aws", "2026-01", store=direct).noop
    got = read_changes("aws", START, START + timedelta(days=1), store=direct)
    uploaded = [frame.with_columns(pl.lit(slot).alias("Time")) for slot, _, frame in slots]
    assert same_rows(got, pl.concat(uploaded))


@pytest.mark.parametrize("fault", ["drop_request", "drop_reply"])
def test_without_client_retries_the_commit_rereads_the_head_itself(
    s3_endpoint, s3_client, bucket, fault
):
    """The client gives up at once, so it is commit_manifest that finds out: a head still at the
    base means the PUT never arrived (write it again); a head naming the version means it landed."""
    import boto3
    from botocore.config import Config

    direct = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: s3_client)
    slots = list(upload_slots(direct, FANOUT))
    for slot, key, _ in slots[: FANOUT - 1]:
        run_compaction(key, slot, "aws", store=direct)
    faults = Faults(**{fault: drop_first_head_put("If-Match")})
    with FaultyProxy(s3_endpoint, faults) as proxy:
        client = boto3.client(
            "s3",
            endpoint_url=proxy.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )
        proxied = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: client)
        result = compact_month("aws", "2026-01", store=proxied)
    assert faults.replies_dropped + faults.requests_dropped == 1  # the fault landed
    report = verify_month("aws", "2026-01", store=direct)
    assert report.ok and not report.pending, report.problems
    assert len(result.compacted_keys) == 1 and result.sequence == FANOUT
    assert direct.exists(report.manifest.version_key)
