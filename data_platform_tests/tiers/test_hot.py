"""Providers, the hot writer and change detection: schemas, keys, idempotence, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import polars as pl
import pytest

from data_platform.tiers import (
    HotSlotConflictError,
    ProviderConfig,
    detect_changes,
    get_config,
    prepare_for_upload,
    register_provider,
    run_compaction,
    upload_hot_tier,
)

AT = datetime(2026, 1, 23, 14, 23, 41, tzinfo=UTC)


def aws_columns(**overrides) -> dict[str, list]:
    columns = {
        "InstanceType": ["m5.large", "c5.xlarge"],
        "Region": ["us-east-1"] * 2,
        "AZ": ["use1-az1", "use1-az2"],
        "SPS": [3, 1],
    }
    return {**columns, **overrides}


def aws_frame(**overrides) -> pl.DataFrame:
    return pl.DataFrame(aws_columns(**overrides))


def test_builtin_providers_and_unknown_provider_names_the_known_ones():
    assert get_config("aws").pk_columns == ("InstanceType", "Region", "AZ")
    assert get_config("azure").value_columns == ("Score",)
    assert get_config("gcp").canonical_columns == [
        "InstanceType",
        "Region",
        "Score",
        "Ceased",
        "Time",
    ]
    with pytest.raises(ValueError, match=r"unknown provider 'oracle'.*aws, azure, gcp"):
        get_config("oracle")


def test_register_provider_then_write(local_store):
    config = register_provider(
        ProviderConfig(
            name="newcloud", pk_columns=["InstanceType", "Region"], value_columns=["Score", "Price"]
        ),
        replace=True,
    )
    frame = pl.DataFrame({"InstanceType": ["a"], "Region": ["r"], "Score": [1.5], "Price": [2]})
    key = upload_hot_tier(frame, AT, "newcloud", store=local_store)
    assert key == "parquet_cp_hot/newcloud/2026/01/23/14-20.parquet"
    written = pl.read_parquet(local_store.get(key))
    assert written.columns == config.canonical_columns
    assert written["Price"].dtype == pl.Float64


def test_upload_writes_slot_key_time_and_is_idempotent(local_store):
    key = upload_hot_tier(
        pd.DataFrame(aws_columns()), AT, "aws", store=local_store, environment="test"
    )
    assert key == "test/parquet_cp_hot/aws/2026/01/23/14-20.parquet"
    written = pl.read_parquet(local_store.get(key))
    assert written["Time"].unique().to_list() == [datetime(2026, 1, 23, 14, 20, tzinfo=UTC)]
    assert written["Ceased"].to_list() == [False, False]
    assert written["SPS"].dtype == pl.Int32
    # Same content again (rows in another order): the same key, nothing rewritten.
    etag = local_store.head(key).etag
    again = upload_hot_tier(aws_frame().reverse(), AT, "aws", store=local_store, environment="test")
    assert again == key and local_store.head(key).etag == etag
    with pytest.raises(HotSlotConflictError, match="already holds different changes"):
        upload_hot_tier(aws_frame(SPS=[2, 2]), AT, "aws", store=local_store, environment="test")
    assert local_store.head(key).etag == etag


def test_empty_frame_writes_nothing(local_store):
    assert upload_hot_tier(aws_frame().clear(), AT, "aws", store=local_store) == ""
    assert list(local_store.list("")) == []


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (aws_frame().drop("AZ"), "missing AZ"),
        (aws_frame(Extra=[1, 2]), "extra Extra"),
        (aws_frame(SPS=["high", "low"]), "column 'SPS' is String.*schema drift"),
        (aws_frame(AZ=["same", "same"], InstanceType=["x", "x"]), "appears twice"),
        (aws_frame(Region=[None, "r"]), "hold nulls"),
    ],
)
def test_schema_drift_is_a_clear_error_and_writes_nothing(local_store, frame, message):
    with pytest.raises(ValueError, match=message):
        upload_hot_tier(frame, AT, "aws", store=local_store)
    assert list(local_store.list("")) == []


def test_naive_timestamps_are_refused(local_store):
    naive = datetime(2026, 1, 23, 14, 20)
    with pytest.raises(ValueError, match="timezone-naive"):
        upload_hot_tier(aws_frame(), naive, "aws", store=local_store)
    key = upload_hot_tier(aws_frame(), AT, "aws", store=local_store)
    with pytest.raises(ValueError, match="timezone-naive"):
        run_compaction(key, naive, "aws", store=local_store)


def test_prepare_for_upload_marks_removed_rows_ceased():
    combined = prepare_for_upload(aws_frame(), pd.DataFrame(aws_columns(InstanceType=["z1", "z2"])))
    assert combined["Ceased"].to_list() == [False, False, True, True]


def test_detect_changes_new_changed_and_removed():
    def snapshot(types: str, sps: list[int]) -> pl.DataFrame:
        n = len(types)
        return aws_frame(InstanceType=list(types), Region=["r"] * n, AZ=["z"] * n, SPS=sps)

    before = snapshot("abde", [1, 2, 1, 1])
    after = snapshot("bcde", [3, 1, 1, 2]).with_columns(pl.lit("ignored").alias("Other"))
    changed, removed = detect_changes(before, after, "aws")
    assert sorted(changed["InstanceType"].to_list()) == ["b", "c", "e"]
    assert removed["InstanceType"].to_list() == ["a"]
