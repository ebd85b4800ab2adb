"""Silver: raw CSV/Parquet snapshots (year/month/region/sigungu folders) into Postgres tables.

The engine (presets, sources, readers, loader) is plain Python; the `defs` package wraps it
for Dagster.
"""
