"""Provider configs: the pydantic model, the TOML provider file, and its reference in the docs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from data_platform.cli import main
from data_platform.core.objectstore import object_store_from_url
from data_platform.tiers import ProviderConfig, TiersError, get_config, upload_hot_tier
from data_platform.tiers import config as config_module
from data_platform.tiers.config import ProviderSchema, load_provider_file

AT = datetime(2026, 1, 23, 14, 20, tzinfo=UTC)
DOCS = Path(__file__).parents[2] / "docs" / "tiers.md"
GOOD = """
[oracle]
pk_columns = ["Shape", "Region"]
value_columns = ["Score", "Price"]
dtypes = { Score = "Int32" }
score_column = "Score"
"""


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers a test loads are forgotten after it (other tests expect only the built-in ones)."""
    monkeypatch.setattr(config_module, "_PROVIDERS", dict(config_module._PROVIDERS))


def provider_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "a/b"}, "provider 'a/b': name: must be non-empty without '/', not 'a/b'"),
        ({"pk_columns": []}, "provider 'p': pk_columns: Tuple should have at least 1 item"),
        ({"value_columns": ["x"]}, "value_columns: columns must be distinct (pk and value"),
        ({"value_columns": ["Time"]}, "columns together) and not 'Ceased'/'Time'"),
        ({"dtypes": {"q": "Int32"}}, "dtypes: 'q' is not a pk or value column (x, y)"),
        ({"score_column": "x"}, "score_column: not one of the value_columns (y), not 'x'"),
    ],
)
def test_config_errors_name_the_provider_and_the_rule(fields, message):
    with pytest.raises(TiersError) as caught:
        ProviderConfig(**{"name": "p", "pk_columns": ["x"], "value_columns": ["y"], **fields})
    assert message in str(caught.value)


def test_polars_types_and_their_names_are_both_accepted():
    by_type = ProviderConfig(
        name="p", pk_columns=["x"], value_columns=["y"], dtypes={"y": pl.Int32()}
    )
    by_name = ProviderConfig(name="p", pk_columns=["x"], value_columns=["y"], dtypes={"y": "Int32"})
    assert by_type == by_name and by_type.schema_dtypes["y"] == pl.Int32()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (  # an unknown key
            'pk_columns = ["x"]\nvalue_columns = ["y"]\ncolour = "red"',
            "[bad]: colour: unknown key (allowed: pk_columns, value_columns, dtypes, score_column)",
        ),
        (  # a wrong type
            'pk_columns = "x"\nvalue_columns = ["y"]',
            "[bad]: pk_columns: Input should be a valid tuple, not 'x' (expected: a list of at "
            "least one column name)",
        ),
        (  # a value out of range
            'pk_columns = ["x"]\nvalue_columns = ["y"]\ndtypes = { y = "Int128" }',
            "[bad]: dtypes.y: 'Int128' is not allowed (allowed: 'String', 'Float64', 'Float32', "
            "'Int64', 'Int32', 'Int16', 'Int8' or 'Boolean')",
        ),
    ],
    ids=["unknown-key", "wrong-type", "out-of-range"],
)
def test_provider_file_errors_name_file_table_key_and_what_is_allowed(tmp_path, table, message):
    path = provider_file(tmp_path, f"[bad]\n{table}\n")
    with pytest.raises(TiersError) as caught:
        load_provider_file(path)
    assert str(caught.value) == f"provider file {path}, {message}"
    with pytest.raises(TiersError, match="unknown provider 'bad'"):
        get_config("bad")  # nothing of a refused file is registered


def test_provider_file_that_is_not_toml_or_redefines_a_provider(tmp_path):
    with pytest.raises(TiersError, match=r"providers.toml is not TOML"):
        load_provider_file(provider_file(tmp_path, "[oracle\n"))
    with pytest.raises(TiersError, match=r"\[aws\]: a different provider 'aws' is already known"):
        load_provider_file(provider_file(tmp_path, '[aws]\npk_columns=["x"]\nvalue_columns=["y"]'))


def test_cli_reads_a_provider_file(tmp_path):
    path = provider_file(tmp_path, GOOD)
    lake = tmp_path / "lake"
    lake.mkdir()
    frame = pl.DataFrame({"Shape": ["s"], "Region": ["r"], "Score": [3], "Price": [1.5]})
    state = ["tiers", "state", "--store", str(lake), "--provider", "oracle", "--at", AT.isoformat()]
    result = CliRunner().invoke(main, [*state, "--providers", str(path)])
    assert result.exit_code == 0, result.output
    upload_hot_tier(frame, AT, "oracle", store=object_store_from_url(str(lake)))
    result = CliRunner().invoke(main, [*state, "--providers", str(path)])
    assert result.exit_code == 0 and "1 live rows" in result.output, result.output
    bad = provider_file(tmp_path, '[x]\npk_columns = "a"\nvalue_columns = ["b"]')
    result = CliRunner().invoke(main, [*state, "--providers", str(bad)])
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"Error: provider file {bad}, [x]: pk_columns: Input should be a valid tuple, not 'a' "
        "(expected: a list of at least one column name)"
    ]


def test_the_provider_file_reference_lists_every_model_field(tmp_path):
    section = DOCS.read_text().split("**Provider file.**", 1)[1].split("\n- **", 1)[0]
    documented = re.findall(r"^\s*\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert documented == list(ProviderSchema.model_fields)
    example = section.split("```toml", 1)[1].split("```", 1)[0]
    assert [c.name for c in load_provider_file(provider_file(tmp_path, example))] == ["oracle"]
