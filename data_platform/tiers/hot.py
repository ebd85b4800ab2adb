"""Hot tier: one Parquet file per 10-minute slot, written once with If-None-Match."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import polars as pl

from data_platform.core.objectstore import ObjectNotFound, ObjectStore, PreconditionFailed
from data_platform.tiers.config import (
    CEASED,
    TIME,
    TIME_DTYPE,
    TiersError,
    get_config,
    hot_key,
    slot_start,
)
from data_platform.tiers.frames import conform, from_parquet, to_parquet, to_polars

log = logging.getLogger(__name__)


class HotSlotConflictError(TiersError):
    """The slot's hot file exists with different content; a slot is written once."""


def prepare_for_upload(changed_df: Any, removed_df: Any) -> pl.DataFrame:
    """One frame: changed rows with `Ceased` False, removed rows with `Ceased` True."""
    changed = to_polars(changed_df, "changed_df").with_columns(pl.lit(False).alias(CEASED))
    removed = to_polars(removed_df, "removed_df").with_columns(pl.lit(True).alias(CEASED))
    if removed.is_empty():
        return changed
    if changed.is_empty():
        return removed
    return pl.concat([changed, removed], how="diagonal_relaxed")


def upload_hot_tier(
    df: Any,
    timestamp: datetime,
    provider: str = "aws",
    *,
    store: ObjectStore,
    environment: str = "production",
) -> str:
    """Write the slot's changes; return its key ("" for an empty frame, no write).

    Writing the same slot again returns the key when the content is equal and raises
    HotSlotConflictError when it differs.
    """
    config = get_config(provider)
    slot = slot_start(timestamp)
    frame = to_polars(df)
    if frame.is_empty():
        return ""
    frame = conform(frame.drop(TIME, strict=False), config)
    frame = frame.with_columns(pl.lit(slot).cast(TIME_DTYPE).alias(TIME)).sort(
        list(config.pk_columns)
    )
    key = hot_key(config, slot, environment)
    try:
        store.put_if_absent(key, to_parquet(frame))
    except PreconditionFailed:
        try:
            existing = from_parquet(store.get(key), config, key)
        except ObjectNotFound:  # deleted between our write and read: nothing to compare
            raise HotSlotConflictError(f"{key} vanished while being written; retry") from None
        if existing.equals(frame):
            log.info("hot slot %s already written with the same content", key)
            return key
        raise HotSlotConflictError(
            f"{key} already holds different changes for slot {slot.isoformat()}; a slot is "
            "written once (delete the file first if it is known to be wrong)"
        ) from None
    return key
