"""The one Dagster code location: every domain's `defs()` merged, plus the shared resources."""

import dagster as dg

from data_platform.resources import shared_resources
from data_platform.silver import defs as silver


def build_definitions() -> dg.Definitions:
    return dg.Definitions.merge(silver.defs(), dg.Definitions(resources=shared_resources()))


defs = build_definitions()
