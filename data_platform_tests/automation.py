"""Automation conditions evaluated tick by tick on one instance, as the automation sensor does."""

from __future__ import annotations

from datetime import datetime

import dagster as dg


class AutomationTicks:
    def __init__(self, definitions: dg.Definitions, *keys: dg.AssetKey) -> None:
        self.definitions = definitions
        self.keys = keys
        self.instance = dg.DagsterInstance.ephemeral()
        self._cursor = None

    def tick(self, at: datetime | None = None) -> dict[dg.AssetKey, set[str | None]]:
        """What this tick requests: partitions (None for an unpartitioned asset) by asset."""
        result = dg.evaluate_automation_conditions(
            defs=self.definitions,
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(*self.keys),
            evaluation_time=at,
            cursor=self._cursor,
        )
        self._cursor = result.cursor
        requested = {key: result.get_requested_partitions(key) for key in self.keys}
        return {
            key: {None if p is None else str(p) for p in partitions}
            for key, partitions in requested.items()
            if partitions
        }

    def materialized(self, key: dg.AssetKey, partition: str | None = None) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
