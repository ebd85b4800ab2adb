"""Change detection between two consecutive raw snapshots."""

from __future__ import annotations

from typing import Any

import polars as pl

from data_platform.tiers.config import CEASED, ProviderConfig, TiersError, get_config
from data_platform.tiers.frames import conform, to_polars

_BEFORE = "__before"


def detect_changes(previous: Any, current: Any, provider: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(changed, removed): rows new or with any different value; keys present before, gone now.

    Both frames hold the provider's pk and value columns (other columns are ignored)."""
    config = get_config(provider)
    pk, values = list(config.pk_columns), list(config.value_columns)
    before = snapshot_columns(to_polars(previous, "previous"), config)
    after = snapshot_columns(to_polars(current, "current"), config)
    marked = before.with_columns(pl.lit(True).alias(_BEFORE))
    differs = pl.any_horizontal([pl.col(v).ne_missing(pl.col(v + _BEFORE)) for v in values])
    changed = (
        after.join(marked, on=pk, how="left", suffix=_BEFORE, nulls_equal=True)
        .filter(pl.col(_BEFORE).is_null() | differs)
        .select([*pk, *values])
    )
    removed = before.join(after, on=pk, how="anti", nulls_equal=True)
    return changed, removed


def snapshot_columns(frame: pl.DataFrame, config: ProviderConfig) -> pl.DataFrame:
    """A raw snapshot reduced to pk + value columns in the provider's dtypes."""
    columns = [*config.pk_columns, *config.value_columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TiersError(f"{config.name}: snapshot lacks column(s) {', '.join(missing)}")
    return conform(frame.select(columns), config).drop(CEASED)
