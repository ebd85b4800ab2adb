"""Seed 002: copy Postgres tables between databases through a staging table in the target.

`DataCopyEngine(source, target).copy_with_staging_table(...)` is the public entry point; the
`replicate` CLI and the Dagster assets in `defs.py` run the tables of a YAML spec through it.
"""

from data_platform.replication.engine import CopyResult, DataCopyEngine

__all__ = ["CopyResult", "DataCopyEngine"]
