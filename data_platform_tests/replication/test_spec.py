"""Spec parsing: every mistake names the table entry and the field; URLs stay masked."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from data_platform.replication.errors import SpecError
from data_platform.replication.spec import SpecFile, connection_settings, load_spec, parse_spec
from data_platform.replication.tables import TableRef
from data_platform_tests.config_reference import model_reference

CONNECTIONS = {
    "fs2_postgres": {"url": "${SOURCE_PG_URL}"},
    "postgres_default": {"url": "postgresql://app:${TARGET_PW}@db.example:5433/dw"},
}


def table(**changes: object) -> dict:
    entry = {
        "name": "sym_coverage",
        "source": {"connection": "fs2_postgres", "table": "raw_data.sym_v1_sym_coverage"},
        "target": {"connection": "postgres_default", "table": "raw_data.sym_v1_sym_coverage"},
    }
    entry.update(changes)
    return entry


def parse(*tables: dict) -> object:
    return parse_spec({"connections": CONNECTIONS, "tables": list(tables)})


def test_a_full_entry_parses_with_defaults() -> None:
    spec = parse(
        table(primary_key=["id"], where="id > 0", watermark="updated_at"),
        table(
            name=None,
            target={"connection": "postgres_default", "table": {"schema": "a.b", "name": 'c"d'}},
        ),
    )
    first, second = spec.tables
    assert first.source_table == TableRef("raw_data", "sym_v1_sym_coverage")
    assert (first.strategy, first.primary_key, first.watermark) == ("merge", ("id",), "updated_at")
    assert second.target_table == TableRef("a.b", 'c"d') and second.name == 'c"d'
    assert (
        TableRef("public", "t")
        == parse(table(source={"connection": "fs2_postgres", "table": "t"})).tables[0].source_table
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            table(strategy="swap"),
            "tables[0] (sym_coverage).strategy: 'swap' is not allowed (allowed: 'merge', 'upsert',",
        ),
        (
            table(colour="red"),
            "tables[0] (sym_coverage).colour: unknown key (allowed: name, source, target,",
        ),
        (
            {"name": "x", "source": table()["source"]},
            "tables[0] (x).target: missing (expected: a mapping with the keys connection, table)",
        ),
        (
            table(source={"connection": "nope", "table": "t"}),
            "tables[0] (sym_coverage).source.connection: unknown connection 'nope' (defined: ",
        ),
        (
            table(source={"connection": "fs2_postgres"}),
            "tables[0] (sym_coverage).source.table: missing (expected: `schema.table`",
        ),
        (
            table(target={"connection": "postgres_default", "table": {"name": "t", "x": 1}}),
            "tables[0] (sym_coverage).target.table: unknown keys ['x'] (allowed: schema, name)",
        ),
        (
            table(primary_key="id"),
            "primary_key: Input should be a valid list, not 'id' "
            "(expected: a non-empty list of column names",
        ),
        (
            table(primary_key=[]),
            "primary_key: List should have at least 1 item after validation, not 0 "
            "(expected: a non-empty list of column names",
        ),
        (
            table(source={"connection": "fs2_postgres", "table": "t", "schema": "s"}),
            "tables[0] (sym_coverage).source.schema: unknown key (allowed: connection, table)",
        ),
        (
            table(where=["id > 0"]),
            "tables[0] (sym_coverage).where: Input should be a valid string, not ['id > 0'] "
            "(expected: a non-empty SQL condition on the source)",
        ),
        (
            table(name=7),
            "tables[0].name: Input should be a valid string, not 7 "
            "(expected: a non-empty string (default: the target table's name))",
        ),
        (
            table(upstream="silver//orders"),
            "tables[0] (sym_coverage).upstream: 'silver//orders' is not allowed "
            "(expected: an asset key path such as silver/orders)",
        ),
        (
            table(watermark="updated_at", lookback=-5),
            "tables[0] (sym_coverage).lookback: -5 is negative; use 0 or more",
        ),
        (table(watermark="updated_at", lookback="soon"), ".lookback: 'soon' is not a duration"),
        (table(lookback="10m"), "tables[0] (sym_coverage): lookback needs a `watermark` column"),
        (
            table(watermark="updated_at", null_watermark="maybe"),
            "null_watermark: 'maybe' is not allowed (allowed: 'include' or 'skip')",
        ),
        (
            table(where="   "),
            "where: '   ' is not allowed (expected: a non-empty SQL condition on the source)",
        ),
        (
            table(strategy="replace", watermark="updated_at"),
            "tables[0] (sym_coverage): watermark cannot be used with strategy replace",
        ),
    ],
)
def test_mistakes_name_the_entry_and_field(entry: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(entry)
    assert str(caught.value).startswith("the spec: ")
    assert message in str(caught.value)


def test_lookback_and_null_watermark_parse_with_defaults() -> None:
    timed, numeric, plain = parse(
        table(watermark="updated_at", lookback="10m", null_watermark="skip"),
        table(name="b", watermark="seq", lookback=500),
        table(name="c", watermark="seq"),
    ).tables
    assert (timed.lookback, timed.null_watermark) == (timedelta(minutes=10), "skip")
    assert (numeric.lookback, numeric.null_watermark) == (500, "include")
    assert (plain.lookback, plain.null_watermark) == (None, "include")
    assert timed.copy_arguments()["lookback"] == timedelta(minutes=10)


def test_upstream_is_kept_as_written() -> None:
    first, second = parse(table(upstream="silver/silver_stage_1_main"), table(name="b")).tables
    assert (first.upstream, second.upstream) == ("silver/silver_stage_1_main", None)


def test_wrong_entries_and_connections_never_echo_a_url() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"connections": {"c": "postgresql://u:pw-secret@h/d"}, "tables": [table()]})
    assert str(caught.value) == (
        "the spec: connections.c: Input should be a valid dictionary, not a str "
        "(expected: a mapping with the keys url)"
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(
            {"connections": {"c": {"url": ["postgresql://u:pw-secret@h/d"]}}, "tables": [table()]}
        )
    assert str(caught.value) == (
        "the spec: connections.c.url: Input should be a valid string, not a list "
        "(expected: a postgresql:// URL; `${VAR}` parts are taken from the environment at run "
        'time (e.g. "${SOURCE_PG_URL}"))'
    )
    with pytest.raises(
        SpecError,
        match=r"^the spec: tables\[1\]: Input should be a valid dictionary, not 'orders' "
        r"\(expected: a mapping with the keys name, source, ",
    ):
        parse(table(), "orders")
    with pytest.raises(SpecError) as caught:
        parse_spec({"connections": {7: {"url": "x"}}, "tables": [table()]})
    assert str(caught.value) == (
        "the spec: connections: key 7 is not allowed: Input should be a valid string"
    )


def test_the_file_is_named_in_every_mistake(tmp_path: Path) -> None:
    spec = tmp_path / "replication.yaml"
    spec.write_text(
        "connections: {a: {url: x}}\ntables:\n"
        "  - {source: {connection: a, table: s.t}, target: {connection: a, table: s.t},"
        " strategy: swap}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert str(caught.value) == (
        f"{spec}: tables[0].strategy: 'swap' is not allowed "
        "(allowed: 'merge', 'upsert', 'delete_insert' or 'replace')"
    )


def test_unset_variable_names_table_and_field_and_urls_stay_masked() -> None:
    spec = parse(table())
    entry = spec.tables[0]
    with pytest.raises(SpecError) as caught:
        connection_settings(spec, entry, "target", {"SOURCE_PG_URL": "postgresql://h/db"})
    assert str(caught.value) == (
        "table 'sym_coverage': target.connection 'postgres_default': url needs ${TARGET_PW}, "
        "which is not set; export it"
    )
    settings = connection_settings(spec, entry, "target", {"TARGET_PW": "hunter2-secret"})
    assert (settings.host, settings.port, settings.password) == (
        "db.example",
        5433,
        "hunter2-secret",
    )
    assert "hunter2" not in repr(settings) + repr(spec) + settings.url()
    literal = parse_spec(
        {
            "connections": {"c": {"url": "postgresql://u:pw-literal@h/d"}},
            "tables": [
                table(
                    source={"connection": "c", "table": "t"},
                    target={"connection": "c", "table": "t"},
                )
            ],
        }
    )
    assert "pw-literal" not in repr(literal)


def test_files_that_are_not_specs_give_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("tables: [\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        load_spec(broken)
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "missing.yaml")
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text(
        "connections: {a: {url: x}}\ntables:\n"
        "  - {source: {connection: a, table: s.t}, target: {connection: a, table: s.t}}\n"
        "  - {source: {connection: a, table: s.u}, target: {connection: a, table: o.t}}\n"
    )
    with pytest.raises(SpecError, match="two tables are named 't'"):
        load_spec(duplicate)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('s."We;ird ""Tab"', TableRef("s", 'We;ird "Tab')),
        ('"a.b"."c"', TableRef("a.b", "c")),
        ('"x.y"', TableRef("public", "x.y")),
        ("raw_data.Sym", TableRef("raw_data", "Sym")),  # as written, no lower-casing
        ("a.b.c", TableRef("a", "b.c")),  # split at the first dot, as before
    ],
)
def test_string_table_names_follow_sql_quoting(written: str, expected: TableRef) -> None:
    entry = table(source={"connection": "fs2_postgres", "table": written})
    assert parse(entry).tables[0].source_table == expected


@pytest.mark.parametrize("written", ['s.a"b', 'a."b"c', '""', "s.", ".t"])
def test_malformed_string_table_names_say_how_to_quote(written: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(table(source={"connection": "fs2_postgres", "table": written}))
    assert "source.table" in str(caught.value)
    assert "quote a part that holds a dot or a quote as in SQL" in str(caught.value)


def test_the_documented_keys_are_the_models_fields() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "replication.md").read_text()
    reference = " ".join(docs.split("## The spec file", 1)[1].split())
    documented = re.findall(r"^- `([^`]+)` \(", docs.split("## The spec file", 1)[1], re.M)
    keys = model_reference(SpecFile)
    assert sorted(documented) == sorted(keys)
    for key, field in keys.items():
        assert f"- `{key}` ({field.description}" in reference, key
