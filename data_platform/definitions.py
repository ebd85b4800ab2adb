"""The one Dagster code location: every domain's `defs()` merged, plus the shared resources."""

from pathlib import Path

import dagster as dg

from data_platform.parts import defs as parts
from data_platform.resources import shared_resources
from data_platform.silver import defs as silver
from data_platform.silver.presets import list_presets

# The same folder `data-platform silver load --presets-dir` writes to by default, relative to the
# folder Dagster is started from: a preset saved by `--infer-schema` shows up on the next reload.
USER_PRESETS_DIR = Path("presets")


def build_definitions() -> dg.Definitions:
    presets = list_presets(USER_PRESETS_DIR)
    return dg.Definitions.merge(
        silver.defs(presets), parts.defs(), dg.Definitions(resources=shared_resources())
    )


defs = build_definitions()
