"""Dagster side of replication: one asset per spec table (key
`replication/<target schema>/<target schema>_<target table>`, group `replication`), a
PostgresResource per spec connection, run metadata with the copy's numbers, checks for count and
checksum parity, and retries for connection errors only.

Lineage: a table copied from a table this platform materializes (a silver table, parts prices)
depends on that asset and runs after it (automation condition); any other source is an external
asset `replication_sources/<connection>/<connection>_<schema>_<table>`.
The work happens in the engine (`DataCopyEngine`); this package only maps it onto
Dagster: `assets` (with the lineage), `checks`, merged by `defs()` with a resource per
connection and the job.
"""

import re
from collections.abc import Collection, Mapping
from typing import Any

import dagster as dg

from data_platform.dagster_common import PLATFORM_PG_VARIABLE, asset_job
from data_platform.replication.defs.assets import (
    RETRY_POLICY,
    asset_key,
    external_sources,
    replication_asset,
    source_key,
    upstream_of,
)
from data_platform.replication.defs.checks import CHECK_CHECKSUM, CHECK_COUNTS
from data_platform.replication.errors import SpecError
from data_platform.replication.spec import ConnectionSpec, ReplicationSpec, load_spec, spec_path
from data_platform.resources import PostgresResource

__all__ = [
    "CHECK_CHECKSUM",
    "CHECK_COUNTS",
    "JOB_NAME",
    "RETRY_POLICY",
    "asset_key",
    "defs",
    "defs_from_environment",
    "source_key",
]

_RESOURCE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_NAME = "replication_job"


def defs_from_environment(
    env: Mapping[str, str],
    reserved_resource_keys: Collection[str] = (),
    platform_tables: Mapping[str, dg.AssetSpec] | None = None,
) -> dg.Definitions:
    """The assets of ./replication.yaml (or $DATA_PLATFORM_REPLICATION_SPEC); none without it."""
    path = spec_path(env)
    if not path.is_file():
        return dg.Definitions()
    return defs(load_spec(path), reserved_resource_keys, platform_tables=platform_tables)


def defs(
    spec: ReplicationSpec,
    reserved_resource_keys: Collection[str] = (),
    retry_policy: dg.RetryPolicy = RETRY_POLICY,
    platform_tables: Mapping[str, dg.AssetSpec] | None = None,
) -> dg.Definitions:
    """`platform_tables` maps `schema.table` of the platform's database to the asset writing it,
    so a copy of one of them depends on that asset (and has its columns)."""
    resources = {}
    for name, connection in spec.connections.items():
        if not _RESOURCE_KEY.match(name) or name in reserved_resource_keys:
            taken = ", ".join(sorted(reserved_resource_keys))
            raise SpecError(
                f"connection {name!r}: Dagster needs a resource name of letters, digits and _ "
                f"that is not one of {taken}; rename it"
            )
        resources[name] = connection_resource(connection)
    on_platform = {n for n, c in spec.connections.items() if is_platform_database(c)}
    upstreams = {t.name: upstream_of(t, on_platform, platform_tables or {}) for t in spec.tables}
    assets: list[Any] = [
        replication_asset(table, retry_policy, upstreams[table.name], on_platform)
        for table in spec.tables
    ]
    assets += external_sources(t for t in spec.tables if upstreams[t.name] is None)
    job = asset_job(
        JOB_NAME,
        [asset_key(t) for t in spec.tables],
        "Copy every table of the replication spec into its target.",
    )
    return dg.Definitions(assets=assets, resources=resources, jobs=[job])


def is_platform_database(connection: ConnectionSpec) -> bool:
    """A spec connection that is the platform's own database (the shared `postgres`)."""
    return connection.url_template.strip() == f"${{{PLATFORM_PG_VARIABLE}}}"


def connection_resource(connection: ConnectionSpec) -> PostgresResource:
    """`${VAR}` becomes an EnvVar (Dagit shows its name, never the value)."""
    variables = connection.variables()
    if not variables:
        return PostgresResource(url=connection.url_template)
    if connection.url_template == f"${{{variables[0]}}}":
        return PostgresResource(url=dg.EnvVar(variables[0]))
    raise SpecError(
        f"connection {connection.name!r}: in Dagster the url must be one ${{VAR}} holding the "
        "whole URL (or a URL without variables)"
    )
