"""Real parts shared by every domain: AWS sessions, object stores, Postgres, path partitions.

Plain Python only; nothing here imports Dagster.
"""
