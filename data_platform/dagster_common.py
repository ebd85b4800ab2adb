"""What every domain's Dagster side shares: standard metadata keys Dagit understands, owners and
tags, the Postgres pool, the automation conditions, and failures without an internal traceback.

Dagster side only (engines never import this).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import dagster as dg

OWNER = "team:data-platform"
PLATFORM_PG_VARIABLE = "DATA_PLATFORM_PG_URL"  # the shared `postgres` resource's database
# Steps that write the platform's Postgres database share one concurrency pool; its limit is set
# on the instance (dagster.yaml `concurrency.pools`, or `dagster instance concurrency set`).
POSTGRES_POOL = "postgres_platform"


def scoped_key(domain: str, scope: str, label: str) -> dg.AssetKey:
    """`domain/scope/scope_label`: Dagit labels a node by the key's last part, so the scope (a
    provider, a task) goes into it too and two providers' `hot` tiers can be told apart."""
    return dg.AssetKey([domain, scope, f"{scope}_{label}"])


def tags(domain: str, layer: str) -> dict[str, str]:
    """Tags Dagit filters by: which domain's code, which layer of the data (raw, silver, ...)."""
    return {"domain": domain, "layer": layer}


def external_asset(
    key: dg.AssetKey,
    *,
    domain: str,
    layer: str,
    description: str,
    kind: str | None = None,
    group: str | None = None,
    **spec: Any,
) -> dg.AssetSpec:
    """An origin outside the platform (a producer, a site, a source table): a node in the graph
    that the platform never materializes."""
    return dg.AssetSpec(
        key,
        group_name=group or domain,
        kinds={kind} if kind else None,
        owners=[OWNER],
        tags=tags(domain, layer),
        description=description,
        **spec,
    )


def table_schema(columns: Iterable[tuple[str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])


def postgres_table(
    qualified_name: str, columns: Iterable[tuple[str, str]] | None
) -> dict[str, Any]:
    """Definition metadata of a Postgres table: its name and, when known at load, its columns."""
    metadata: dict[str, Any] = {"dagster/table_name": qualified_name}
    if columns is not None:
        metadata["dagster/column_schema"] = table_schema(columns)
    return metadata


def row_count(rows: int) -> dict[str, Any]:
    return {"dagster/row_count": dg.MetadataValue.int(rows)}


def uri(location: str) -> dict[str, Any]:
    return {"dagster/uri": dg.MetadataValue.text(location)}


def check_spec(
    name: str, key: dg.AssetKey, partitions_def: Any, description: str
) -> dg.AssetCheckSpec:
    """A check partitioned like its asset, so each result lands on the partition it checked
    (a run of one partition; partitioned checks are "preview" in 1.13, but what Dagit needs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=key, partitions_def=partitions_def, description=description
        )


@contextmanager
def failure_on(
    errors: tuple[type[BaseException], ...], allow_retries: bool = False
) -> Iterator[None]:
    """A domain error (its message says what is wrong and what to do) becomes a step `Failure`
    with that message and no chained traceback of the engine's internals."""
    try:
        yield
    except errors as exc:
        raise dg.Failure(description=str(exc), allow_retries=allow_retries) from None


def after_upstream_update() -> dg.AutomationCondition:
    """Like `eager()`, for any partition (not only the latest) and without waiting for missing
    upstream partitions: a month of a daily parent, or a table fed by one partition of many,
    runs as soon as one of its parent partitions is updated."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("after_upstream_update")


def on_cron_latest(
    cron: str, timezone: str = "UTC", lookback: timedelta | None = None
) -> dg.AutomationCondition:
    """`on_cron` without waiting for upstream updates (the upstream is outside the platform, so
    it never reports one): at each tick, the latest time partition (or those within `lookback`).
    Ticks missed while the daemon was down are not caught up: the next tick runs the latest."""
    window = dg.AutomationCondition.in_latest_time_window(lookback)
    return (
        window & dg.AutomationCondition.cron_tick_passed(cron, timezone).since_last_handled()
    ).with_label(f"on_cron_latest({cron}, {timezone})")


def asset_job(
    name: str, keys: Iterable[dg.AssetKey], description: str
) -> dg.UnresolvedAssetJobDefinition:
    """A named job over assets of one partitions definition (Dagster infers it)."""
    return dg.define_asset_job(
        name, selection=dg.AssetSelection.assets(*keys), description=description
    )
