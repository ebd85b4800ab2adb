"""`replace` by swap: a fresh table loaded without indexes and swapped in, in one transaction."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from data_platform.core.postgres import connect
from data_platform.replication import DataCopyEngine
from data_platform.replication.errors import DuplicateKeyError, IntegrityMismatchError
from data_platform.replication.tables import TableRef
from data_platform_tests.replication.conftest import (
    execute,
    fetch,
    kill_9_when,
    run_in_background,
)
from data_platform_tests.replication.test_cli import SPEC, setup_spec
from data_platform_tests.replication.test_engine import make_source, make_target, staging_tables

OID = "SELECT 'raw.items'::regclass::oid"
ITEMS = "SELECT * FROM raw.items ORDER BY id"
# Privileges without the grantor (a superuser's GRANT is recorded as the owner's).
GRANTS = (
    "SELECT a.grantee::regrole::text, a.privilege_type, a.is_grantable FROM pg_class c,"
    " aclexplode(c.relacl) a WHERE c.oid = 'raw.items'::regclass ORDER BY 1, 2"
)
INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY 1"
CONSTRAINTS = (
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = 'raw.items'::regclass ORDER BY 1"
)
DESCRIPTION = (
    "SELECT pg_get_userbyid(relowner), obj_description(oid, 'pg_class'),"
    " col_description(oid, 2), pg_get_serial_sequence('raw.items', 'id')"
    " FROM pg_class WHERE oid = 'raw.items'::regclass"
)
# A source whose rows trickle out (2 ms each), so a run spends seconds inside its COPY.
SLOW_SOURCE = (
    "CREATE VIEW raw.items AS SELECT i AS id, 'slow ' || i AS name, i::numeric(10,2) AS price"
    " FROM generate_series(1, {rows}) i, LATERAL (SELECT pg_sleep(0.002 + 0 * i)) AS pause"
)


def replace(source_url: str, pg_url: str, strategy: str = "replace", **kwargs: object):
    return DataCopyEngine(source_url, pg_url, **kwargs).copy_with_staging_table(
        "raw.items", "raw.items", primary_keys=["id"], strategy=strategy
    )


def analyze(*urls: str) -> None:
    """Row estimates, which the choice of a rewrite for merging strategies reads."""
    for url in urls:
        execute(url, "ANALYZE raw.items", autocommit=True)


def test_swap_keeps_grants_owner_comments_indexes_and_sequence(
    source_url: str, pg_url: str
) -> None:
    reader, owner = (f"dp_{role}_{uuid.uuid4().hex[:8]}" for role in ("reader", "owner"))
    make_source(source_url)
    execute(
        pg_url,
        f"CREATE ROLE {reader}",
        f"CREATE ROLE {owner}",
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.items (id serial PRIMARY KEY, name text NOT NULL UNIQUE,"
        " price numeric(10,2) CHECK (price >= 0))",
        "CREATE INDEX items_cheap ON raw.items (price DESC) INCLUDE (name) WHERE price < 10",
        "INSERT INTO raw.items SELECT i, 'old ' || i, 0 FROM generate_series(51, 150) i",
        "COMMENT ON TABLE raw.items IS 'served to the shop'",
        "COMMENT ON COLUMN raw.items.name IS 'display name'",
        f"ALTER TABLE raw.items OWNER TO {owner}",
        f"GRANT SELECT ON raw.items TO {reader}",
        f"GRANT UPDATE ON raw.items TO {reader} WITH GRANT OPTION",
        "GRANT SELECT ON raw.items TO PUBLIC",
    )
    kept = [fetch(pg_url, query) for query in (GRANTS, INDEXES, CONSTRAINTS, DESCRIPTION)]
    old_oid = fetch(pg_url, OID)
    result = replace(source_url, pg_url)
    assert result.method == "swap" and result.checksum_match
    assert (result.inserted, result.deleted, result.target_rows) == (100, 100, 100)
    assert fetch(pg_url, OID) != old_oid  # the fresh table took the old one's place
    assert [fetch(pg_url, query) for query in (GRANTS, INDEXES, CONSTRAINTS, DESCRIPTION)] == kept
    assert fetch(pg_url, ITEMS) == fetch(source_url, ITEMS)
    assert staging_tables(pg_url) == []
    execute(
        pg_url,
        "SELECT setval('raw.items_id_seq', 1000)",
        "INSERT INTO raw.items (name, price) VALUES ('from the sequence', 1)",
    )
    assert fetch(pg_url, "SELECT name FROM raw.items WHERE id = 1001") == [("from the sequence",)]


def test_a_dependent_view_makes_replace_truncate_and_the_view_stays(
    source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    make_target(pg_url)
    execute(pg_url, "CREATE VIEW raw.cheap AS SELECT id, name FROM raw.items WHERE price < 5")
    old_oid = fetch(pg_url, OID)
    result = replace(source_url, pg_url)
    assert result.method == "truncate+insert: dependent views"
    assert fetch(pg_url, OID) == old_oid
    assert fetch(pg_url, "SELECT count(*) FROM raw.cheap") == [(3,)]  # 1.25, 2.50, 3.75
    assert fetch(pg_url, ITEMS) == fetch(source_url, ITEMS)


def test_readers_see_the_old_table_during_the_load_and_then_the_new(
    source_url: str, pg_url: str
) -> None:
    """A reader goes on reading the old table while the fresh one loads and never sees a mix."""
    execute(source_url, "CREATE SCHEMA raw", SLOW_SOURCE.format(rows=500))
    make_target(pg_url)
    old, new = (100, "old 99"), (500, "slow 99")
    seen: list[tuple[float, tuple]] = []
    phases: dict[str, float] = {}
    stop = threading.Event()

    def read() -> None:
        conn = connect(pg_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("SELECT count(*), max(name) FROM raw.items")
                    seen.append((time.monotonic(), cur.fetchone()))
                    time.sleep(0.01)
        finally:
            conn.close()

    def note(step: str) -> None:
        phases.setdefault(step, time.monotonic())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        result = replace(source_url, pg_url, on_progress=lambda step, _: note(step))
        time.sleep(0.1)
    finally:
        stop.set()
        reader.join()
    assert result.method == "swap"
    assert {state for _, state in seen} == {old, new}
    during_load = [state for at, state in seen if phases["copying"] < at < phases["merging"]]
    assert len(during_load) > 10 and set(during_load) == {old}
    assert seen[-1][1] == new


@pytest.mark.parametrize("strategy", ["replace", "merge", "upsert", "delete_insert"])
def test_a_checksum_mismatch_after_the_load_rolls_the_swap_back(
    source_url: str, pg_url: str, strategy: str
) -> None:
    """An event trigger changes a row of the fresh table as its key is built: the checksum
    against the source sees it, nothing is swapped and nothing is left behind."""
    make_source(source_url)
    make_target(pg_url)
    execute(
        pg_url,
        "CREATE FUNCTION raw.tamper() RETURNS event_trigger LANGUAGE plpgsql AS $$"
        " DECLARE t text; BEGIN"
        "  SELECT object_identity INTO t FROM pg_event_trigger_ddl_commands()"
        "   WHERE object_type = 'table' AND object_identity LIKE 'raw.dp_staging_%' LIMIT 1;"
        "  IF t IS NOT NULL THEN EXECUTE 'UPDATE ' || t || ' SET price = price + 1 WHERE id = 7';"
        "  END IF; END $$",
        "CREATE EVENT TRIGGER tamper ON ddl_command_end WHEN TAG IN ('ALTER TABLE')"
        " EXECUTE FUNCTION raw.tamper()",
    )
    analyze(source_url, pg_url)
    before, old_oid = fetch(pg_url, ITEMS), fetch(pg_url, OID)
    with pytest.raises(IntegrityMismatchError, match="checksum") as caught:
        replace(source_url, pg_url, strategy)
    assert caught.value.numbers.method == "swap"
    assert (fetch(pg_url, ITEMS), fetch(pg_url, OID)) == (before, old_oid)
    assert staging_tables(pg_url) == []


def test_kill_9_mid_load_keeps_the_old_table_and_leaves_no_fresh_one(
    tmp_path: Path, source_url: str, pg_url: str
) -> None:
    execute(source_url, "CREATE SCHEMA raw", SLOW_SOURCE.format(rows=2000))
    make_target(pg_url)
    spec = SPEC.split("  - name: missing")[0].replace("upsert", "replace")
    env = setup_spec(tmp_path, source_url, pg_url, spec + "    primary_key: [id]\n")
    before, old_oid = fetch(pg_url, ITEMS), fetch(pg_url, OID)
    process = run_in_background(tmp_path, env)
    # The COPY into the fresh table (in the target's schema, not TEMP) is running.
    copying = 'SELECT count(*) FROM pg_stat_activity WHERE query LIKE \'COPY "raw"."dp_staging_%\''
    kill_9_when(process, pg_url, copying)
    assert (fetch(pg_url, ITEMS), fetch(pg_url, OID)) == (before, old_oid)
    assert staging_tables(pg_url) == []


@pytest.mark.parametrize("strategy", ["merge", "upsert", "delete_insert"])
def test_merging_strategies_rewrite_a_target_the_source_largely_covers(
    source_url: str, pg_url: str, strategy: str
) -> None:
    """Source keys 1..100, target 51..150: 50 updated, 50 inserted, 101..150 kept, as in
    place, but through a fresh table (a new oid) that keeps the target's grants."""
    reader = f"dp_reader_{uuid.uuid4().hex[:8]}"
    make_source(source_url)
    make_target(pg_url)
    execute(pg_url, f"CREATE ROLE {reader}", f"GRANT SELECT ON raw.items TO {reader}")
    analyze(source_url, pg_url)
    grants, old_oid = fetch(pg_url, GRANTS), fetch(pg_url, OID)
    expected = fetch(source_url, ITEMS) + fetch(pg_url, ITEMS + " OFFSET 50")
    result = replace(source_url, pg_url, strategy)
    assert result.method == "swap" and result.checksum_match
    assert (result.inserted, result.updated, result.target_rows) == (50, 50, 150)
    assert fetch(pg_url, ITEMS) == expected
    assert fetch(pg_url, OID) != old_oid and fetch(pg_url, GRANTS) == grants
    assert staging_tables(pg_url) == []


def test_a_small_change_to_a_large_target_is_merged_in_place(source_url: str, pg_url: str) -> None:
    make_source(source_url, rows=10)
    make_target(pg_url)
    analyze(source_url, pg_url)
    old_oid = fetch(pg_url, OID)
    result = replace(source_url, pg_url, "merge")
    assert result.method == "in place: few source rows for the target's size (estimated)"
    assert (result.inserted, result.target_rows, fetch(pg_url, OID)) == (10, 110, old_oid)


@pytest.mark.parametrize("strategy", ["replace", "merge"])
def test_hostile_names_survive_a_swap(source_url: str, pg_url: str, strategy: str) -> None:
    schema, table = 'we"ird.sch;ema', 'x"; DROP TABLE victim; --.t'
    quoted = '"we""ird.sch;ema"."x""; DROP TABLE victim; --.t"'
    column = '"col""; DROP TABLE victim; --"'
    for url in (source_url, pg_url):
        execute(
            url,
            "CREATE TABLE victim (id int)",
            'CREATE SCHEMA "we""ird.sch;ema"',
            f'CREATE TABLE {quoted} (id int CONSTRAINT "k""ey; --" PRIMARY KEY, {column} text)',
        )
    execute(source_url, f"INSERT INTO {quoted} SELECT i, 'new' FROM generate_series(1, 100) i")
    execute(
        pg_url,
        f"INSERT INTO {quoted} SELECT i, 'old' FROM generate_series(51, 150) i",
        f'CREATE INDEX "i""dx USING ; --" ON {quoted} ({column}) WHERE {column} <> \'x USING\'',
    )
    for url in (source_url, pg_url):
        execute(url, f"ANALYZE {quoted}", autocommit=True)
    indexes = f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '{schema}'"
    kept = fetch(pg_url, indexes + " ORDER BY 1")
    ref = TableRef(schema, table)
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(ref, ref, strategy=strategy)
    assert result.method == "swap" and result.checksum_match
    assert result.target_rows == (100 if strategy == "replace" else 150)
    assert fetch(pg_url, indexes + " ORDER BY 1") == kept
    assert fetch(pg_url, "SELECT to_regclass('victim') IS NOT NULL") == [(True,)]
    assert staging_tables(pg_url) == []


def test_rows_that_break_another_unique_index_are_refused_by_its_name(
    source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    execute(source_url, "UPDATE raw.items SET name = 'same' WHERE id IN (3, 4)")
    make_target(pg_url)
    execute(pg_url, "CREATE UNIQUE INDEX items_name ON raw.items (name)")
    before, old_oid = fetch(pg_url, ITEMS), fetch(pg_url, OID)
    with pytest.raises(DuplicateKeyError, match="unique index 'items_name'") as caught:
        replace(source_url, pg_url)
    assert "same" not in str(caught.value)  # a value may be personal data
    assert (fetch(pg_url, ITEMS), fetch(pg_url, OID)) == (before, old_oid)
    assert staging_tables(pg_url) == []


def test_a_dry_run_names_the_way_the_run_changes_the_target(source_url: str, pg_url: str) -> None:
    make_source(source_url)
    make_target(pg_url)
    engine = DataCopyEngine(source_url, pg_url)

    def planned() -> str | None:
        return engine.plan("raw.items", "raw.items", primary_keys=["id"], strategy="replace").method

    old_oid = fetch(pg_url, OID)
    assert planned() == "swap"
    assert fetch(pg_url, OID) == old_oid and staging_tables(pg_url) == []  # nothing made
    execute(pg_url, "CREATE VIEW raw.cheap AS SELECT id, name FROM raw.items WHERE price < 5")
    assert planned() == "truncate+insert: dependent views"
    assert replace(source_url, pg_url).method == "truncate+insert: dependent views"
    execute(pg_url, "DROP TABLE raw.items CASCADE")
    assert planned() is None  # no target: the run creates it
