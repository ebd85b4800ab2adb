"""The last step of a snapshot load: put the filled staging table in place of the old rows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from data_platform.core.partitions import SnapshotKey
from data_platform.core.pg_errors import safe_message
from data_platform.core.postgres import qualified
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import TablePreset
from data_platform.silver.tables import SNAPSHOT_CHECK, partition_bound_sql, snapshot_condition

if TYPE_CHECKING:
    from psycopg2.extensions import cursor as PgCursor

log = logging.getLogger(__name__)


def lock_holders(cur: PgCursor, preset: TablePreset) -> str:
    """Other sessions holding locks on the table or its partitions."""
    cur.execute(
        "SELECT DISTINCT a.pid, a.usename, a.application_name, a.state FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.granted AND l.relation IN"
        " (SELECT relid FROM pg_partition_tree(%s::regclass)) AND a.pid <> pg_backend_pid()",
        (qualified(preset.schema, preset.table).as_string(cur),),
    )
    rows = cur.fetchall()
    return ", ".join(f"pid {p} {u} {app!r} {state}" for p, u, app, state in rows) or "none now"


def swap_partition(
    cur: PgCursor, preset: TablePreset, snapshot: SnapshotKey, leaf: str, staging: str
) -> None:
    """DROP the snapshot's old leaf, rename the staging table to its name and ATTACH it. Only
    this step locks the parent (ACCESS EXCLUSIVE for the DROP), so readers wait milliseconds,
    not for the whole COPY; the CHECK on the staging table spares ATTACH a validation scan."""
    parent = qualified(preset.schema, preset.table)
    comment = f"silver snapshot {snapshot.path()}"
    # The old leaf by its name, or by the comment every swap writes (leaves named by an
    # earlier naming rule).
    cur.execute(
        "SELECT c.relname FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c"
        " ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass"
        " AND (c.relname = %s OR pg_catalog.obj_description(c.oid, 'pg_class') = %s)",
        (parent.as_string(cur), leaf, comment),
    )
    for (old,) in cur.fetchall():
        cur.execute(sql.SQL("DROP TABLE {}").format(qualified(preset.schema, old)))
    cur.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            qualified(preset.schema, staging), sql.Identifier(leaf)
        )
    )
    try:
        cur.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
                parent, qualified(preset.schema, leaf), partition_bound_sql(preset, snapshot)
            )
        )
    except psycopg2.errors.LockNotAvailable:
        raise
    except psycopg2.Error as exc:
        raise SilverLoadError(
            f"cannot attach the new partition for {snapshot.path()} to {preset.table}: "
            f"{safe_message(exc)}. Another partition may cover this snapshot; "
            "check the table's partitions (\\d+ in psql)."
        ) from None
    # The CHECK has done its jobs (refusing rows, sparing ATTACH a scan); the partition bound now
    # says the same, so later direct inserts into the leaf need not evaluate both.
    cur.execute(
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            qualified(preset.schema, leaf), sql.Identifier(SNAPSHOT_CHECK)
        )
    )
    cur.execute(
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            qualified(preset.schema, leaf), sql.Literal(comment)
        )
    )


def replace_rows(cur: PgCursor, preset: TablePreset, snapshot: SnapshotKey, staging: str) -> None:
    """Fallback for a pre-existing plain table: DELETE + INSERT (leaves dead rows to VACUUM)."""
    log.warning(
        "%s.%s is not partitioned: replacing %s with DELETE + INSERT, which leaves dead rows "
        "until VACUUM; recreate the table partitioned to avoid that",
        preset.schema,
        preset.table,
        snapshot.path(),
    )
    target = qualified(preset.schema, preset.table)
    columns = sql.SQL(", ").join(map(sql.Identifier, preset.column_names))
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(target, snapshot_condition(preset, snapshot))
    )
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            target, columns, columns, qualified(preset.schema, staging)
        )
    )
    cur.execute(sql.SQL("DROP TABLE {}").format(qualified(preset.schema, staging)))
