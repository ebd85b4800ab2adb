from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_platform.silver.presets import (
    ColumnSpec,
    PresetError,
    TablePreset,
    list_presets,
    load_preset,
    read_preset_file,
    save_preset,
)

USER_PRESET = """
name = "trades"
dataset = "apt_trades"
schema = "silver"
table = "apt_trades"
ignore_extra_columns = true

[columns]
source_year = "integer"
source_month = "integer"
region = "text"
sigungu = "text"
"거래금액" = "bigint"
deal_date = "date"
"""


def test_builtin_preset_is_data_with_snapshot_columns() -> None:
    preset = load_preset("silver_stage_1_main")
    assert preset.table == "silver_stage_1_main"
    assert preset.schema == "public"
    assert preset.snapshot_columns == ("source_year", "source_month", "region", "sigungu")
    assert preset.column_names[:4] == preset.snapshot_columns
    assert "source_year" not in [c.name for c in preset.data_columns]
    assert preset.column("area_m2").base_type == "numeric"


def test_unknown_preset_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(PresetError) as error:
        load_preset("nope", tmp_path)
    assert "'nope'" in str(error.value)
    assert "silver_stage_1_main" in str(error.value)
    assert "--infer-schema" in str(error.value)


def test_user_presets_add_to_and_override_builtins(tmp_path: Path) -> None:
    (tmp_path / "trades.toml").write_text(USER_PRESET, encoding="utf-8")
    override = {
        "name": "silver_stage_1_main",
        "columns": {
            "source_year": "integer",
            "source_month": "integer",
            "region": "text",
            "sigungu": "text",
            "x": "text",
        },
    }
    (tmp_path / "override.json").write_text(json.dumps(override), encoding="utf-8")
    presets = {p.name: p for p in list_presets(tmp_path)}
    trades = presets["trades"]
    assert (trades.dataset, trades.schema, trades.table) == ("apt_trades", "silver", "apt_trades")
    assert trades.ignore_extra_columns is True
    assert trades.column("거래금액").pg_type == "bigint"
    assert presets["silver_stage_1_main"].column_names[-1] == "x"
    assert load_preset("trades", tmp_path) == trades


def test_saved_preset_reads_back_identically(tmp_path: Path) -> None:
    preset = load_preset("silver_stage_1_main")
    path = save_preset(preset, tmp_path / "presets", comment="reviewed?\nsecond line")
    assert path.read_text(encoding="utf-8").startswith("# reviewed?\n# second line\n")
    assert read_preset_file(path) == preset
    with pytest.raises(PresetError, match="already exists"):
        save_preset(preset, tmp_path / "presets")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"region": "text", "sigungu": "text", "source_month": "integer"}, "source_year"),
        (
            {
                "source_year": "integer",
                "source_month": "integer",
                "region": "text",
                "sigungu": "text",
                "bad": "text; DROP TABLE x",
            },
            "unsupported column type",
        ),
        (
            {
                "source_year": "integer",
                "source_month": "integer",
                "region": "integer",
                "sigungu": "text",
            },
            "must be text",
        ),
    ],
)
def test_malformed_presets_are_refused(columns: dict[str, str], message: str) -> None:
    with pytest.raises(PresetError, match=message):
        TablePreset(
            name="t",
            dataset="t",
            schema="public",
            table="t",
            columns=tuple(ColumnSpec(k, v) for k, v in columns.items()),
        )


def test_unknown_field_in_preset_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('colums = {a = "text"}\n', encoding="utf-8")
    with pytest.raises(PresetError, match="colums"):
        read_preset_file(path)


@pytest.mark.parametrize("field", ["name", "dataset", "table", "schema"])
@pytest.mark.parametrize("value", ["../outside", "a/b", "..", ".hidden", "x" * 64])
def test_names_that_could_escape_or_collide_are_refused(field: str, value: str) -> None:
    fields = {"name": "ok", "dataset": "ok", "schema": "public", "table": "ok", field: value}
    with pytest.raises(PresetError, match=f"`{field}`"):
        TablePreset(columns=(ColumnSpec("x", "text"),), **fields)  # type: ignore[arg-type]


def test_korean_names_are_plain_names() -> None:
    import dataclasses

    builtin = load_preset("silver_stage_1_main")
    preset = dataclasses.replace(builtin, name="실거래", dataset="실거래_raw", table="아파트_매매")
    assert preset.table == "아파트_매매"


def test_presets_dir_comes_from_the_environment(tmp_path: Path) -> None:
    from data_platform.silver.presets import user_presets_dir

    assert user_presets_dir({}) == Path("presets")
    assert user_presets_dir({"DATA_PLATFORM_PRESETS_DIR": str(tmp_path)}) == tmp_path


def test_a_malformed_preset_is_reported_and_the_rest_still_load(tmp_path: Path, caplog) -> None:
    from data_platform.silver.defs import configured_presets, silver_key

    (tmp_path / "trades.toml").write_text(USER_PRESET, encoding="utf-8")
    (tmp_path / "broken.toml").write_text("name = [unclosed", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"broken\.toml"):
        presets = configured_presets({"DATA_PLATFORM_PRESETS_DIR": str(tmp_path)})
    assert "trades" in {p.name for p in presets}
    assert "broken.toml" in caplog.text
    with pytest.raises(PresetError, match=r"broken\.toml"):
        list_presets(tmp_path)  # without a reporter a bad file stays an error
    assert silver_key(next(p for p in presets if p.name == "trades"))


def _refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PresetError) as error:
        read_preset_file(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


COLUMNS = '[columns]\nsource_year = "integer"\nsource_month = "integer"\nregion = "text"\n'


def test_an_unknown_key_is_named_with_the_keys_allowed(tmp_path: Path) -> None:
    message = _refusal(tmp_path, 'tabel = "x"\n' + COLUMNS)
    assert "tabel: unknown key (allowed: name, dataset, schema, table," in message


def test_a_value_of_the_wrong_type_is_refused_not_coerced(tmp_path: Path) -> None:
    # Before pydantic, "yes" became True and 5 became "5".
    message = _refusal(tmp_path, 'ignore_extra_columns = "yes"\n' + COLUMNS)
    assert "ignore_extra_columns: Input should be a valid boolean, not 'yes'" in message
    message = _refusal(tmp_path, COLUMNS + "sigungu = 5\n")
    assert "columns.sigungu: Input should be a valid string, not 5" in message


def test_a_value_out_of_range_is_named_with_what_is_allowed(tmp_path: Path) -> None:
    message = _refusal(tmp_path, 'file_format = "xlsx"\n' + COLUMNS)
    assert "file_format: 'xlsx' is not allowed (allowed: 'auto', 'csv' or 'parquet')" in message
    message = _refusal(tmp_path, 'snapshot_columns = ["a", "b", "c"]\n' + COLUMNS)
    assert "snapshot_columns: List should have at least 4 items" in message
    assert "(expected: 4 distinct columns for year, month, region, sigungu)" in message


def test_the_documented_preset_keys_are_the_models_keys() -> None:
    import re

    from data_platform.silver.preset_file import PresetFile
    from data_platform_tests.config_reference import model_reference

    doc = (Path(__file__).parents[2] / "docs" / "silver.md").read_text(encoding="utf-8")
    section = doc.split("### Preset file keys", 1)[1].split("\n#", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert documented == list(model_reference(PresetFile))


def test_the_silver_command_loads_pydantic_only_to_read_a_preset() -> None:
    import subprocess
    import sys

    code = (
        "import sys, data_platform.silver.cli as cli; assert 'pydantic' not in sys.modules; "
        "from data_platform.silver.presets import load_preset; "
        "load_preset('silver_stage_1_main'); print('pydantic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
