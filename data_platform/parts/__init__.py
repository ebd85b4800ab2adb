"""Seed 004: the daily automotive parts price pipeline (crawl, self-heal, transform, upsert,
report). Engine modules are plain Python; the `defs` package maps them onto Dagster."""
