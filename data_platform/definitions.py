"""The one Dagster code location: every domain's `defs()` merged, plus the shared resources."""

import os
from pathlib import Path

import dagster as dg

from data_platform.execution import platform_executor
from data_platform.parts import defs as parts
from data_platform.replication import defs as replication
from data_platform.resources import shared_resources
from data_platform.silver import defs as silver
from data_platform.tiers import defs as tiers
from data_platform.training import defs as training
from data_platform.training.tasks import configured_tasks

TRAINING_TASKS_FILE = Path("training_tasks.toml")  # tasks that get training assets


def build_definitions() -> dg.Definitions:
    resources = shared_resources()
    domains = [
        silver.defs(silver.configured_presets(os.environ)),
        parts.defs(),
        training.defs(configured_tasks(TRAINING_TASKS_FILE)),
        tiers.defs(),
    ]
    taken = set(resources).union(*(d.resources or {} for d in domains))
    return dg.Definitions.merge(
        *domains,
        replication.defs_from_environment(os.environ, reserved_resource_keys=taken),
        dg.Definitions(resources=resources, executor=platform_executor),
    )


defs = build_definitions()
