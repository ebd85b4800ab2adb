"""DataCopyEngine against two real databases: round trips, strategies, failures, keys, names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from data_platform.core.postgres import connect
from data_platform.replication import DataCopyEngine
from data_platform.replication.errors import (
    DuplicateKeyError,
    IntegrityMismatchError,
    ReplicationError,
    SchemaMismatchError,
)
from data_platform.replication.tables import TableRef
from data_platform_tests.replication.conftest import execute, fetch

EVERY_TYPE = """CREATE TABLE raw.every_type (
    id bigint PRIMARY KEY, small smallint, label text, note varchar(50), amount numeric(20,6),
    ratio double precision, flag boolean, day date, at timestamptz, local_at timestamp,
    doc jsonb, plain json, blob bytea, tags text[], uid uuid, span interval)"""
EVERY_ROW = """INSERT INTO raw.every_type VALUES
 (1, 1, '', 'x', 0, 0, true, '2024-01-01', '2024-01-01 00:00:00+00', '2024-01-01 12:00',
  '{}', '[]', '', '{}', '00000000-0000-0000-0000-000000000001', '1 day'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, -32768, E'line1\\nline2\\r\\n\\ttab, "quoted", back\\\\slash \\\\N', E'a,b;"c"',
  123456789012.123456, -1.5e-300, false, '1999-12-31', '2024-06-30 23:59:59.999999+09',
  '0001-01-01 00:00', '{"k": [1, "two", null, {"n": 1.50}], "한": "글"}',
  '{"keep":  "spacing", "k": 1, "k": 2}', E'\\\\x00ff5c0a0d', ARRAY['a,b', NULL, E'q"\\\\'],
  gen_random_uuid(), '-3 hours 2 minutes'),
 (4, 7, '\\N', 'NULL', 'NaN', 'Infinity', NULL, 'infinity', '-infinity', NULL,
  'null', 'null', E'\\\\x', ARRAY[]::text[], NULL, NULL)"""
# Each row's text form: exact for every type (NaN, bytea and NULL vs '' included).
ALL_ROWS = "SELECT t::text FROM raw.every_type AS t ORDER BY id"


def make_source(url: str, rows: int = 100) -> None:
    execute(
        url,
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2))",
        f"INSERT INTO raw.items SELECT i, 'item ' || i, i * 1.25 FROM generate_series(1, {rows}) i",
    )


def make_target(url: str) -> None:
    """Keys 51..150 overlap the source's 1..100 on 51..100; 101..150 exist only here."""
    execute(
        url,
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2))",
        "INSERT INTO raw.items SELECT i, 'old ' || i, 0 FROM generate_series(51, 150) i",
    )


def add_tampering_trigger(url: str, table: str) -> None:
    """A trigger that adds 1 to every price written into `table`."""
    execute(
        url,
        "CREATE FUNCTION raw.tamper() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN NEW.price := NEW.price + 1; RETURN NEW; END $$",
        f"CREATE TRIGGER tamper BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW"
        " EXECUTE FUNCTION raw.tamper()",
    )


def staging_tables(url: str) -> list[tuple]:
    return fetch(url, "SELECT relname FROM pg_class WHERE relname LIKE 'dp_staging_%'")


def test_every_type_round_trips_exactly(source_url: str, pg_url: str) -> None:
    execute(source_url, "CREATE SCHEMA raw", EVERY_TYPE, EVERY_ROW)
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "raw.every_type", "raw.every_type"
    )
    assert (result.staged_rows, result.inserted, result.checksum_match) == (4, 4, True)
    assert result.created_target
    assert fetch(pg_url, ALL_ROWS) == fetch(source_url, ALL_ROWS)
    nulls = "SELECT id, label IS NULL, label = '' FROM raw.every_type ORDER BY id"
    assert fetch(pg_url, nulls)[:2] == [(1, False, True), (2, True, None)]


def test_text_copy_into_assignable_types_round_trips(source_url: str, pg_url: str) -> None:
    """A target with wider types (varchar -> text, smallint -> bigint) goes through text COPY."""
    execute(source_url, "CREATE SCHEMA raw", EVERY_TYPE, EVERY_ROW)
    execute(
        pg_url,
        "CREATE SCHEMA raw",
        EVERY_TYPE.replace("note varchar(50)", "note text").replace("small smallint", "small int8"),
    )
    engine = DataCopyEngine(source_url, pg_url)
    assert engine.plan("raw.every_type", "raw.every_type").copy_format == "text"
    result = engine.copy_with_staging_table("raw.every_type", "raw.every_type")
    assert result.checksum_match and result.inserted == 4
    assert fetch(pg_url, ALL_ROWS) == fetch(source_url, ALL_ROWS)


@pytest.mark.parametrize("strategy", ["merge", "upsert", "delete_insert"])
def test_merging_strategies_touch_only_staged_keys(
    source_url: str, pg_url: str, strategy: str
) -> None:
    make_source(source_url)
    make_target(pg_url)
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "raw.items", "raw.items", strategy=strategy
    )
    assert (result.source_rows, result.staged_rows) == (100, 100)
    assert (result.inserted, result.updated, result.deleted) == (50, 50, 0)
    assert result.target_rows == 150 and result.checksum_match
    expected = [(i, f"item {i}") for i in range(1, 101)] + [
        (i, f"old {i}") for i in range(101, 151)
    ]
    assert fetch(pg_url, "SELECT id, name FROM raw.items ORDER BY id") == expected
    assert staging_tables(pg_url) == []


@pytest.mark.parametrize("strategy", ["merge", "upsert", "delete_insert"])
def test_a_table_of_key_columns_only_passes_the_check(
    source_url: str, pg_url: str, strategy: str
) -> None:
    """Matched rows of a key-only table are written too, so the written-rows check finds them."""
    pairs = "CREATE TABLE raw.pairs (a int, b text, PRIMARY KEY (a, b))"
    execute(source_url, "CREATE SCHEMA raw", pairs, "INSERT INTO raw.pairs VALUES (1,'x'), (2,'y')")
    execute(pg_url, "CREATE SCHEMA raw", pairs, "INSERT INTO raw.pairs VALUES (1,'x'), (3,'z')")
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "raw.pairs", "raw.pairs", strategy=strategy
    )
    assert result.checksum_match and (result.inserted, result.target_rows) == (1, 3)
    assert fetch(pg_url, "SELECT * FROM raw.pairs ORDER BY a") == [(1, "x"), (2, "y"), (3, "z")]


@pytest.mark.parametrize("strategy", ["merge", "upsert", "delete_insert", "replace"])
def test_a_partitioned_target_is_merged_and_checked(
    source_url: str, pg_url: str, strategy: str
) -> None:
    """Rows written into the partitions carry this transaction's id like a plain table's."""
    make_source(source_url)
    execute(
        pg_url,
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2))"
        " PARTITION BY RANGE (id)",
        "CREATE TABLE raw.items_low PARTITION OF raw.items FOR VALUES FROM (MINVALUE) TO (76)",
        "CREATE TABLE raw.items_high PARTITION OF raw.items FOR VALUES FROM (76) TO (MAXVALUE)",
        "INSERT INTO raw.items SELECT i, 'old ' || i, 0 FROM generate_series(51, 150) i",
    )
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "raw.items", "raw.items", strategy=strategy
    )
    assert result.checksum_match
    if strategy == "replace":  # a partitioned target is not swapped
        assert result.method.startswith("truncate+insert: partitioned")
    kept = 0 if strategy == "replace" else 50
    assert result.target_rows == 100 + kept
    assert fetch(pg_url, "SELECT count(*) FROM raw.items_high WHERE name LIKE 'item %'") == [(25,)]
    add_tampering_trigger(pg_url, "raw.items_high")
    execute(source_url, "UPDATE raw.items SET price = price * 2")
    before = fetch(pg_url, "SELECT * FROM raw.items ORDER BY id")
    with pytest.raises(IntegrityMismatchError, match="checksum"):
        DataCopyEngine(source_url, pg_url).copy_with_staging_table(
            "raw.items", "raw.items", strategy=strategy
        )
    assert fetch(pg_url, "SELECT * FROM raw.items ORDER BY id") == before


def test_replace_makes_the_target_exactly_the_source(source_url: str, pg_url: str) -> None:
    make_source(source_url)
    make_target(pg_url)
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "raw.items", "raw.items", strategy="replace"
    )
    assert (result.inserted, result.deleted, result.target_rows) == (100, 100, 100)
    assert fetch(pg_url, "SELECT * FROM raw.items ORDER BY id") == fetch(
        source_url, "SELECT * FROM raw.items ORDER BY id"
    )


def test_where_limits_the_rows_and_missing_target_is_created_with_key(
    source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "raw.items", "copy.items", where_condition="id <= 10 OR name = 'item 99'"
    )
    assert (result.source_rows, result.staged_rows, result.target_rows) == (11, 11, 11)
    key = fetch(
        pg_url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'copy.items'::regclass"
        " AND i.indisprimary",
    )
    assert key == [("id",)]
    columns = "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
    columns += " WHERE table_name = 'items' ORDER BY ordinal_position"
    assert fetch(pg_url, columns) == fetch(source_url, columns)


def test_different_target_columns_are_named_and_nothing_changes(
    source_url: str, pg_url: str
) -> None:
    make_source(source_url)
    execute(
        pg_url,
        "CREATE SCHEMA raw",
        "CREATE TABLE raw.items (id int PRIMARY KEY, name int, extra text)",
        "INSERT INTO raw.items VALUES (1, 1, 'kept')",
    )
    with pytest.raises(SchemaMismatchError) as caught:
        DataCopyEngine(source_url, pg_url).copy_with_staging_table("raw.items", "raw.items")
    message = str(caught.value)
    assert "price" in message and "extra" in message and "name (text -> integer)" in message
    assert fetch(pg_url, "SELECT * FROM raw.items") == [(1, 1, "kept")]


def test_table_without_key_needs_primary_key(source_url: str, pg_url: str) -> None:
    execute(source_url, "CREATE TABLE loose (a int, b text)", "INSERT INTO loose VALUES (1, 'x')")
    with pytest.raises(SchemaMismatchError, match="primary_key"):
        DataCopyEngine(source_url, pg_url).copy_with_staging_table("loose", "loose")
    assert fetch(pg_url, "SELECT to_regclass('public.loose')") == [(None,)]
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(
        "loose", "loose", primary_keys=["a"]
    )
    assert result.inserted == 1


def make_duplicate_emails(source_url: str, pg_url: str) -> None:
    """40 e-mail keys staged 2 or 3 times each (100 rows) and one unique key, in `events`."""
    execute(
        source_url,
        "CREATE TABLE events (email text, day date, v text)",
        "INSERT INTO events SELECT 'user' || i % 40 || '@example.com', '2024-01-01', 'v'"
        " FROM generate_series(1, 100) i",
        "INSERT INTO events VALUES ('unique@example.com', '2024-01-02', 'unique')",
    )
    execute(
        pg_url,
        "CREATE TABLE events (email text, day date, v text, PRIMARY KEY (email, day))",
        "INSERT INTO events VALUES ('user1@example.com', '2024-01-01', 'before')",
    )


def test_duplicate_source_keys_are_counted_without_values(source_url: str, pg_url: str) -> None:
    """Keys may be personal data: the message names columns and counts, never a value."""
    make_duplicate_emails(source_url, pg_url)
    with pytest.raises(DuplicateKeyError) as caught:
        DataCopyEngine(source_url, pg_url).copy_with_staging_table(
            "events", "events", primary_keys=["email", "day"]
        )
    message = str(caught.value)
    assert "40 key(s) of primary_key (email, day) occur more than once, in 100 rows" in message
    assert "up to 3 rows for one key" in message
    assert "@" not in message and "2024" not in message
    assert fetch(pg_url, "SELECT email, v FROM events") == [("user1@example.com", "before")]
    assert staging_tables(pg_url) == []


def test_failure_after_staging_leaves_target_unchanged(
    source_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_source(source_url)
    make_target(pg_url)
    before = fetch(pg_url, "SELECT * FROM raw.items ORDER BY id")

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected after staging")

    monkeypatch.setattr("data_platform.replication.engine.strategy_statements", fail)
    with pytest.raises(RuntimeError, match="injected"):
        DataCopyEngine(source_url, pg_url).copy_with_staging_table("raw.items", "raw.items")
    assert fetch(pg_url, "SELECT * FROM raw.items ORDER BY id") == before
    assert staging_tables(pg_url) == []


def test_failure_during_the_merge_rolls_everything_back(source_url: str, pg_url: str) -> None:
    """A trigger fails the 30th inserted row: the DELETE of delete_insert already ran."""
    make_source(source_url)
    make_target(pg_url)
    execute(
        pg_url,
        "CREATE FUNCTION raw.fail_late() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.id = 30 THEN RAISE EXCEPTION 'injected during the merge'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER fail_late BEFORE INSERT ON raw.items FOR EACH ROW"
        " EXECUTE FUNCTION raw.fail_late()",
    )
    before = fetch(pg_url, "SELECT * FROM raw.items ORDER BY id")
    for strategy in ("delete_insert", "merge", "replace"):
        with pytest.raises(ReplicationError, match="injected during the merge"):
            DataCopyEngine(source_url, pg_url).copy_with_staging_table(
                "raw.items", "raw.items", strategy=strategy
            )
        assert fetch(pg_url, "SELECT * FROM raw.items ORDER BY id") == before
        assert staging_tables(pg_url) == []


@pytest.mark.parametrize("strategy", ["merge", "upsert", "delete_insert", "replace"])
def test_checksum_mismatch_rolls_back(source_url: str, pg_url: str, strategy: str) -> None:
    """A trigger that rewrites values makes the target differ from the staged rows."""
    make_source(source_url)
    make_target(pg_url)
    add_tampering_trigger(pg_url, "raw.items")
    before = fetch(pg_url, "SELECT * FROM raw.items ORDER BY id")
    with pytest.raises(IntegrityMismatchError, match="checksum") as caught:
        DataCopyEngine(source_url, pg_url).copy_with_staging_table(
            "raw.items", "raw.items", strategy=strategy
        )
    assert caught.value.numbers.checksum_match is False
    assert fetch(pg_url, "SELECT * FROM raw.items ORDER BY id") == before


def test_hostile_names_are_quoted_not_executed(source_url: str, pg_url: str) -> None:
    schema, table = 'we"ird.sch;ema', 'x"; DROP TABLE victim; --.t'
    column = 'col"; DROP TABLE victim; --'
    for url in (source_url, pg_url):
        execute(url, "CREATE TABLE victim (id int)")
    execute(
        source_url,
        'CREATE SCHEMA "we""ird.sch;ema"',
        'CREATE TABLE "we""ird.sch;ema"."x""; DROP TABLE victim; --.t"'
        ' (id int PRIMARY KEY, "col""; DROP TABLE victim; --" text)',
        'INSERT INTO "we""ird.sch;ema"."x""; DROP TABLE victim; --.t" VALUES (1, \'a\')',
    )
    ref = TableRef(schema, table)
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(ref, ref)
    assert result.inserted == 1 and result.checksum_match
    assert fetch(pg_url, "SELECT to_regclass('victim') IS NOT NULL") == [(True,)]
    assert fetch(source_url, "SELECT to_regclass('victim') IS NOT NULL") == [(True,)]
    names = fetch(pg_url, "SELECT attname FROM pg_attribute WHERE attname LIKE 'col\"%'")
    assert names == [(column,)]
    assert fetch(pg_url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'we%'") == [(schema,)]


def test_incremental_copies_only_newer_rows(source_url: str, pg_url: str) -> None:
    execute(
        source_url,
        "CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz NOT NULL)",
        "INSERT INTO orders SELECT i, 'new', '2024-01-01'::timestamptz + i * interval '1 hour'"
        " FROM generate_series(1, 50) i",
    )
    engine = DataCopyEngine(source_url, pg_url)
    first = engine.copy_with_staging_table("orders", "orders", watermark="updated_at")
    assert (first.staged_rows, first.inserted) == (50, 50)
    execute(
        source_url,
        "UPDATE orders SET status = 'paid', updated_at = '2024-03-01' WHERE id IN (3, 4)",
        "INSERT INTO orders VALUES (51, 'new', '2024-03-02')",
        "DELETE FROM orders WHERE id = 1",
    )
    second = engine.copy_with_staging_table("orders", "orders", watermark="updated_at")
    # rows at or after the last mark: the boundary row (id 50) again, 3, 4 and 51
    assert (second.source_rows, second.inserted, second.updated) == (4, 1, 3)
    assert second.high_water is not None and second.high_water.startswith("2024-03-02")
    rows = fetch(pg_url, "SELECT id, status FROM orders WHERE id IN (1, 3, 51) ORDER BY id")
    assert rows == [(1, "new"), (3, "paid"), (51, "new")]  # deletes are not propagated
    state = fetch(
        pg_url, "SELECT watermark_column, high_water FROM data_platform_replication.watermarks"
    )
    assert state == [("updated_at", second.high_water)]
    assert (
        engine.copy_with_staging_table("orders", "orders", watermark="updated_at").staged_rows == 1
    )


def test_a_quoted_string_name_reaches_the_real_table(source_url: str, pg_url: str) -> None:
    execute(
        source_url,
        "CREATE SCHEMA s",
        'CREATE TABLE s."We;ird ""Tab" (id int PRIMARY KEY)',
        'INSERT INTO s."We;ird ""Tab" VALUES (1), (2)',
    )
    name = 's."We;ird ""Tab"'
    result = DataCopyEngine(source_url, pg_url).copy_with_staging_table(name, name)
    assert result.table == 's.We;ird "Tab' and result.inserted == 2
    assert fetch(pg_url, 'SELECT id FROM s."We;ird ""Tab" ORDER BY id') == [(1,), (2,)]


def test_plan_refuses_upsert_without_a_unique_target_key(source_url: str, pg_url: str) -> None:
    make_source(source_url)
    execute(pg_url, "CREATE SCHEMA raw", "CREATE TABLE raw.items (id int, name text, price int)")
    engine = DataCopyEngine(source_url, pg_url)
    assert engine.plan("raw.items", "raw.items", strategy="merge").target_exists
    with pytest.raises(SchemaMismatchError, match=r"upsert needs a unique index on \(id\)"):
        engine.plan("raw.items", "raw.items", strategy="upsert")


ORDERS = "CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz)"


def test_a_late_commit_with_an_older_watermark_is_read_within_the_lookback(
    source_url: str, pg_url: str
) -> None:
    """A transaction stamps its row 09:55 but commits after a run that saw rows up to 10:00:
    without a lookback the next run starts at 10:00 and never copies it."""
    execute(
        source_url,
        ORDERS,
        "INSERT INTO orders SELECT i, 'new', '2024-01-01 09:00+00'::timestamptz + i * interval"
        " '1 minute' FROM generate_series(1, 60) i",
    )
    late = connect(source_url)
    try:
        with late.cursor() as cur:
            cur.execute("INSERT INTO orders VALUES (100, 'late', '2024-01-01 09:55+00')")
        engine = DataCopyEngine(source_url, pg_url)
        for target in ("plain", "windowed"):
            first = engine.copy_with_staging_table("orders", target, watermark="updated_at")
            assert first.staged_rows == 60  # the open transaction's row is not visible yet
        late.commit()
    finally:
        late.close()
    plain = engine.copy_with_staging_table("orders", "plain", watermark="updated_at")
    windowed = engine.copy_with_staging_table(
        "orders", "windowed", watermark="updated_at", lookback=timedelta(minutes=10)
    )
    assert plain.staged_rows == 1  # only the boundary row (10:00): id 100 is lost
    assert fetch(pg_url, "SELECT count(*) FROM plain WHERE id = 100") == [(0,)]
    assert windowed.staged_rows == 12  # 09:50 .. 10:00 and the late row
    assert fetch(pg_url, "SELECT status FROM windowed WHERE id = 100") == [("late",)]
    assert fetch(
        source_url, "SELECT %s::timestamptz = '2024-01-01 09:50+00'", (windowed.read_from,)
    ) == [(True,)]
    assert windowed.high_water == plain.high_water  # the mark itself does not move back


def test_a_numeric_watermark_takes_a_numeric_lookback(source_url: str, pg_url: str) -> None:
    execute(
        source_url,
        "CREATE TABLE events (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())",
        "INSERT INTO events (seq) SELECT generate_series(1, 20)",
    )
    engine = DataCopyEngine(source_url, pg_url)
    engine.copy_with_staging_table("events", "events", watermark="seq")
    again = engine.copy_with_staging_table("events", "events", watermark="seq", lookback=5)
    assert (again.read_from, again.staged_rows) == ("15", 6)
    with pytest.raises(SchemaMismatchError, match=r"seq \(bigint\): write a number"):
        engine.plan("events", "events", watermark="seq", lookback=timedelta(minutes=1))
    with pytest.raises(SchemaMismatchError, match=r"write a duration such as 10m"):
        engine.copy_with_staging_table("events", "events", watermark="at", lookback=5)


@pytest.mark.parametrize("null_watermark", ["include", "skip"])
def test_rows_without_a_watermark_are_copied_every_run_or_counted_as_skipped(
    source_url: str, pg_url: str, null_watermark: str
) -> None:
    execute(
        source_url,
        ORDERS,
        "INSERT INTO orders SELECT i, 'new', CASE WHEN i > 3 THEN '2024-01-01'::timestamptz"
        " + i * interval '1 hour' END FROM generate_series(1, 8) i",
    )
    engine = DataCopyEngine(source_url, pg_url)
    options = {"watermark": "updated_at", "null_watermark": null_watermark}
    first = engine.copy_with_staging_table("orders", "orders", **options)
    execute(source_url, "UPDATE orders SET status = 'paid' WHERE id IN (1, 8)")
    plan = engine.plan("orders", "orders", **options)
    second = engine.copy_with_staging_table("orders", "orders", **options)
    assert (first.watermark_nulls, second.watermark_nulls, plan.watermark_nulls) == (3, 3, 3)
    copied = fetch(pg_url, "SELECT id, status FROM orders WHERE id IN (1, 8) ORDER BY id")
    if null_watermark == "include":
        assert (first.staged_rows, second.staged_rows, plan.source_rows) == (8, 4, 4)
        assert (first.skipped_rows, second.skipped_rows, plan.skipped_rows) == (0, 0, 0)
        assert copied == [(1, "paid"), (8, "paid")]
    else:
        assert (first.staged_rows, second.staged_rows, plan.source_rows) == (5, 1, 1)
        assert (first.skipped_rows, second.skipped_rows, plan.skipped_rows) == (3, 3, 3)
        assert copied == [(8, "paid")]
