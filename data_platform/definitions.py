"""The one Dagster code location: every domain's `defs()` merged, plus the shared resources, the
automation sensor that evaluates every asset's AutomationCondition, and code references."""

import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from data_platform.execution import platform_executor
from data_platform.parts import defs as parts
from data_platform.replication import defs as replication
from data_platform.resources import shared_resources
from data_platform.silver import defs as silver
from data_platform.tiers import defs as tiers
from data_platform.tiers.config import configured_providers
from data_platform.training import defs as training
from data_platform.training.tasks import configured_tasks

TRAINING_TASKS_FILE = Path("training_tasks.toml")  # tasks that get training assets
TIERS_PROVIDERS_FILE = Path("tiers_providers.toml")  # providers beyond the built-in ones
AUTOMATION_SENSOR = "platform_automation"
HOT_TIERS_SENSOR = "tiers_hot_automation"
HOT_TIERS = dg.AssetSelection.tag("layer", "hot")
REPO_ROOT = Path(__file__).resolve().parents[1]
GIT_URL_VARIABLE = "DATA_PLATFORM_GIT_URL"  # e.g. https://github.com/org/data-platform
GIT_BRANCH_VARIABLE = "DATA_PLATFORM_GIT_BRANCH"


class DuplicateLabelError(ValueError):
    """Two assets would show the same label (last part of the key) in Dagit."""


def platform_tables(domains: Iterable[dg.Definitions]) -> dict[str, dg.AssetSpec]:
    """`schema.table` -> the asset that writes it, for every Postgres table our assets declare."""
    tables = {}
    for domain in domains:
        for asset in domain.assets or []:
            for spec in getattr(asset, "specs", []):
                name = spec.metadata.get("dagster/table_name")
                if name and "postgres" in spec.kinds and spec.key.path[0] != "replication":
                    tables[str(name)] = spec
    return tables


def check_labels(definitions: dg.Definitions) -> None:
    """Every node's label (last part of its key) is unique, so Dagit's graph can tell them apart."""
    labels = Counter(key.path[-1] for key in definitions.resolve_asset_graph().get_all_asset_keys())
    repeated = sorted(label for label, count in labels.items() if count > 1)
    if repeated:
        raise DuplicateLabelError(
            f"asset labels {', '.join(repeated)} are used by more than one asset: rename a "
            "preset, task, provider or replication target so every label is unique"
        )


def with_code_references(assets: Iterable[Any], env: Mapping[str, str]) -> list[Any]:
    """Each asset links to the file defining it: the file on this machine (found at load, never
    stored), or its page in the git host when DATA_PLATFORM_GIT_URL is set."""
    with warnings.catch_warnings():  # code references are "beta" in 1.13
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _link_code(assets, env)


def _link_code(assets: Iterable[Any], env: Mapping[str, str]) -> list[Any]:
    referenced = dg.with_source_code_references(list(assets))
    if not env.get(GIT_URL_VARIABLE):
        return list(referenced)
    return list(
        dg.link_code_references_to_git(
            assets_defs=referenced,
            git_url=env[GIT_URL_VARIABLE],
            git_branch=env.get(GIT_BRANCH_VARIABLE) or "main",
            file_path_mapping=dg.AnchorBasedFilePathMapping(
                local_file_anchor=REPO_ROOT, file_anchor_path_in_repository=""
            ),
        )
    )


def automation_sensors() -> list[dg.AutomationConditionSensorDefinition]:
    """Every asset's AutomationCondition is evaluated, on by default; only the hot tiers' 10-minute
    cadence waits to be switched on where raw snapshots arrive (the old schedule was off too:
    three providers every 10 minutes would fill an idle deployment with empty runs)."""
    return [
        dg.AutomationConditionSensorDefinition(
            AUTOMATION_SENSOR,
            target=dg.AssetSelection.all() - HOT_TIERS,
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
            description="Evaluates the AutomationConditions: warm tiers after hot, serving "
            "copies after their upstream, parts and training datasets on cron.",
        ),
        dg.AutomationConditionSensorDefinition(
            HOT_TIERS_SENSOR,
            target=HOT_TIERS,
            default_status=dg.DefaultSensorStatus.STOPPED,
            minimum_interval_seconds=30,
            description="Hot tiers every 10 minutes (today's partition); switch on where the "
            "providers' raw snapshots arrive.",
        ),
    ]


def build_definitions(env: Mapping[str, str] = os.environ) -> dg.Definitions:
    resources = shared_resources()
    domains = [
        silver.defs(silver.configured_presets(env)),
        parts.defs(),
        training.defs(configured_tasks(TRAINING_TASKS_FILE)),
        tiers.defs(configured_providers(TIERS_PROVIDERS_FILE)),
    ]
    taken = set(resources).union(*(d.resources or {} for d in domains))
    domains.append(
        replication.defs_from_environment(
            env, reserved_resource_keys=taken, platform_tables=platform_tables(domains)
        )
    )
    merged = dg.Definitions.merge(
        *domains,
        dg.Definitions(
            resources=resources, executor=platform_executor, sensors=automation_sensors()
        ),
    )
    definitions = dg.Definitions(
        assets=with_code_references(merged.assets or [], env),
        asset_checks=merged.asset_checks,
        jobs=merged.jobs,
        schedules=merged.schedules,
        sensors=merged.sensors,
        resources=merged.resources,
        executor=merged.executor,
    )
    check_labels(definitions)
    return definitions


defs = build_definitions()
