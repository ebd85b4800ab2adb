"""The one Dagster code location: every domain's `defs()` merged, plus the shared resources."""

import dagster as dg

from data_platform.resources import shared_resources


def build_definitions() -> dg.Definitions:
    domain_defs: list[dg.Definitions] = []
    return dg.Definitions.merge(*domain_defs, dg.Definitions(resources=shared_resources()))


defs = build_definitions()
