"""The four ways staged rows reach the target in place, as SQL run inside the target's one
transaction (where a large share of the target changes, `swap.py` rewrites it instead).

merge, upsert and delete_insert end in the same state: staged keys hold the staged rows, other
keys are untouched. replace makes the target exactly the staged rows: TRUNCATE + INSERT in the
transaction, so readers wait for the commit (TRUNCATE's lock) and never see it empty or half full.
Every strategy writes every staged row, even one that is only a key and already there, because
the integrity check looks for the staged rows among the rows this transaction wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg2.sql import Composable


def _names(columns: Sequence[str], alias: str | None = None) -> Composable:
    from psycopg2 import sql

    ids = [sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns]
    return sql.SQL(", ").join(ids)


def _assignments(columns: Sequence[str], source_alias: str) -> Composable:
    from psycopg2 import sql

    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier(source_alias, c))
        for c in columns
    )


def _key_match(key: Sequence[str]) -> Composable:
    from psycopg2 import sql

    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("t", k), sql.Identifier("s", k)) for k in key
    )


def strategy_statements(
    strategy: str,
    target: Composable,
    staging: Composable,
    columns: Sequence[str],
    key: Sequence[str],
) -> list[Composable]:
    """The statements of `strategy`. Rows go in staging's order (the source's): sorting 1 M wide
    rows by key first cost more than it saved the index."""
    from psycopg2 import sql

    # A key-only table rewrites its key, so that a matched row is written too.
    values = [c for c in columns if c not in key] or list(key)
    staged = sql.SQL("SELECT {} FROM {}").format(_names(columns), staging)
    insert = sql.SQL("INSERT INTO {} ({}) ").format(target, _names(columns)) + staged
    if strategy == "delete_insert":
        delete = sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE {}").format(
            target, staging, _key_match(key)
        )
        return [delete, insert]
    if strategy == "replace":
        return [sql.SQL("TRUNCATE {}").format(target), insert]
    if strategy == "upsert":
        return [
            insert
            + sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
                _names(key), _assignments(values, "excluded")
            )
        ]
    if strategy == "merge":
        return [
            sql.SQL(
                "MERGE INTO {} AS t USING {} AS s ON {} WHEN MATCHED THEN UPDATE SET {}"
                " WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})"
            ).format(
                target,
                staging,
                _key_match(key),
                _assignments(values, "s"),
                _names(columns),
                _names(columns, "s"),
            )
        ]
    raise ValueError(f"unknown strategy {strategy!r}")
