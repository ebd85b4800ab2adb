"""Commits whose outcome the client cannot know: the server applied the head PUT, its reply lost.

A proxy in front of the real S3 server forwards the manifest head's conditional PUT and closes the
connection instead of replying; the client's retry then meets 412 from its own write. The commit
must find out from the head that it happened and keep every file the head names.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import Message

import dagster as dg
import polars as pl
import pytest

from data_platform.core.aws import S3Connection, static_provider
from data_platform.core.objectstore import ObjectStoreError, object_store_from_url
from data_platform.resources import AwsSessionResource
from data_platform.tiers import compact_month, read_changes, run_compaction
from data_platform.tiers.defs import TiersStoreResource
from data_platform.tiers.defs.assets import warm_asset
from data_platform.tiers.manifest import FANOUT, HEAD_WRITE_TRIES
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


def one_attempt_client(endpoint: str) -> S3Connection:
    """A test S3 connection that gives up at the first failure instead of retrying."""
    return S3Connection(
        region="us-east-1",
        credentials=static_provider("testing", "testing"),
        endpoint_url=endpoint,
        max_retries=0,
    )


@pytest.mark.parametrize("fault", ["drop_request", "drop_reply"])
def test_without_client_retries_the_commit_rereads_the_head_itself(
    s3_endpoint, s3_client, bucket, fault
):
    """The client gives up at once, so it is commit_manifest that finds out: a head still at the
    base means the PUT never arrived (write it again); a head naming the version means it landed."""
    direct = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: s3_client)
    slots = list(upload_slots(direct, FANOUT))
    for slot, key, _ in slots[: FANOUT - 1]:
        run_compaction(key, slot, "aws", store=direct)
    faults = Faults(**{fault: drop_first_head_put("If-Match")})
    with FaultyProxy(s3_endpoint, faults) as proxy:
        client = one_attempt_client(proxy.endpoint_url)
        proxied = object_store_from_url(f"s3://{bucket}/lake", client_factory=lambda: client)
        result = compact_month("aws", "2026-01", store=proxied)
    assert faults.replies_dropped + faults.requests_dropped == 1  # the fault landed
    report = verify_month("aws", "2026-01", store=direct)
    assert report.ok and not report.pending, report.problems
    assert len(result.compacted_keys) == 1 and result.sequence == FANOUT
    assert direct.exists(report.manifest.version_key)


class OneAttemptStore(TiersStoreResource):
    """The tiers store through a client that does not retry, so each dropped request is one
    failed head write of commit_manifest (the platform's client would retry it ten times)."""

    def store(self):
        client = one_attempt_client(self.aws.endpoint_url)
        return object_store_from_url(self.url, client_factory=lambda: client)


def test_the_warm_asset_retries_a_commit_whose_outcome_it_cannot_tell(s3_endpoint, bucket):
    """Every head write of the first attempt goes unanswered while the head stays where it was:
    commit_manifest cannot tell, so the step asks for a retry, which re-reads the head and
    commits."""
    dropped: list[str] = []

    def drop(method: str, path: str, headers: Message) -> bool:
        head_put = method == "PUT" and path.endswith("/manifest.json")
        if head_put and len(dropped) < HEAD_WRITE_TRIES:
            dropped.append(path)
            return True
        return False

    direct = object_store_from_url(
        f"s3://{bucket}/lake", client_factory=lambda: make_s3_client(s3_endpoint)
    )
    list(upload_slots(direct, FANOUT, environment="test"))
    faults = Faults(drop_request=drop)
    with FaultyProxy(s3_endpoint, faults) as proxy:
        store = OneAttemptStore(
            url=f"s3://{bucket}/lake",
            aws=AwsSessionResource(endpoint_url=proxy.endpoint_url),
            environment="test",
        )
        result = dg.materialize(
            [warm_asset("aws", dg.MonthlyPartitionsDefinition(start_date="2026-01-01"))],
            resources={"tiers_store": store},
            partition_key="2026-01-01",
            raise_on_error=False,
        )
    assert faults.requests_dropped == HEAD_WRITE_TRIES  # the first attempt's every head write
    retry = dg.DagsterEventType.STEP_UP_FOR_RETRY
    retries = [e for e in result.all_events if e.event_type == retry]
    assert len(retries) == 1 and "cannot tell" in str(retries[0].event_specific_data.error.cause)
    assert result.success
    report = verify_month("aws", "2026-01", store=direct, environment="test")
    assert report.ok and not report.pending, report.problems
    assert report.manifest.sequence == 1
