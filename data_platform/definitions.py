"""The one Dagster code location: every domain's `defs()` merged, plus the shared resources."""

import os
from pathlib import Path

import dagster as dg

from data_platform.parts import defs as parts
from data_platform.replication import defs as replication
from data_platform.resources import shared_resources
from data_platform.silver import defs as silver
from data_platform.silver.presets import list_presets
from data_platform.tiers import defs as tiers
from data_platform.training import defs as training
from data_platform.training.tasks import configured_tasks

# The same folder `data-platform silver load --presets-dir` writes to by default, relative to the
# folder Dagster is started from: a preset saved by `--infer-schema` shows up on the next reload.
USER_PRESETS_DIR = Path("presets")
TRAINING_TASKS_FILE = Path("training_tasks.toml")  # tasks that get training assets


def build_definitions() -> dg.Definitions:
    presets = list_presets(USER_PRESETS_DIR)
    resources = shared_resources()
    domains = [
        silver.defs(presets),
        parts.defs(),
        training.defs(configured_tasks(TRAINING_TASKS_FILE)),
        tiers.defs(),
    ]
    taken = set(resources).union(*(d.resources or {} for d in domains))
    return dg.Definitions.merge(
        *domains,
        replication.defs_from_environment(os.environ, reserved_resource_keys=taken),
        dg.Definitions(resources=resources),
    )


defs = build_definitions()
