"""Supplier files: every problem is one line naming the file, the key and what is allowed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from data_platform.parts.config import SupplierConfig, load_supplier
from data_platform.parts.errors import PartsError
from data_platform_tests.config_reference import model_reference

DOCS = Path(__file__).parents[2] / "docs" / "parts.md"
VALID = 'code = "shop"\nbase_url = "http://127.0.0.1:1"\ncar_types = ["아반떼"]\n'


def problem(tmp_path: Path, extra: str) -> str:
    path = tmp_path / "shop.toml"
    path.write_text(VALID + extra, encoding="utf-8")
    with pytest.raises(PartsError) as caught:
        load_supplier(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message.removeprefix(f"{path}: ")


def test_unknown_key_is_named_with_the_known_ones(tmp_path: Path) -> None:
    message = problem(tmp_path, "max_page = 3\n")
    assert message.startswith("max_page: unknown key (allowed: code, base_url, car_types,")
    assert "max_pages" in message


def test_wrong_type_is_refused_not_converted(tmp_path: Path) -> None:
    assert problem(tmp_path, 'max_pages = "3"\n') == (
        "max_pages: Input should be a valid integer, not '3' "
        "(expected: an integer >= 1: pages asked for per car type)"
    )


def test_out_of_range_value_names_the_range(tmp_path: Path) -> None:
    assert problem(tmp_path, "requests_per_second = 0\n") == (
        "requests_per_second: Input should be greater than 0, not 0 "
        "(expected: a number > 0: request starts per second)"
    )


def test_missing_keys_and_bad_list_items_are_each_named(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text('car_types = ["", "suv"]\n', encoding="utf-8")
    with pytest.raises(PartsError) as caught:
        load_supplier(path)
    assert str(caught.value) == (
        f"{path}: code: missing (expected: 1-63 lowercase letters, digits, '-' or '_'); "
        "base_url: missing (expected: must start with http:// or https://); "
        "car_types[0]: '' is not allowed (expected: a non-empty list of names)"
    )


def test_unknown_url_placeholder_fails_at_load_naming_the_allowed_ones(tmp_path: Path) -> None:
    assert problem(tmp_path, 'url_template = "{base_url}/p/{kind}?page={page}"\n') == (
        "url_template: unknown placeholder {kind} in '{base_url}/p/{kind}?page={page}' "
        "(allowed: {base_url}, {car_type}, {page})"
    )


def test_a_parser_is_registered_or_beside_the_file_nothing_else(tmp_path: Path) -> None:
    assert problem(tmp_path, 'parser = "os:system"\n').startswith(
        f"parser 'os:system': no file {tmp_path.resolve() / 'os.py'}; a parser is one of "
        "json_listing or 'module:function' of a module.py beside the supplier file"
    )
    assert problem(tmp_path, 'parser = "os.path.join"\n').startswith(
        "parser: 'os.path.join' is neither a built-in parser (json_listing) nor"
    )
    (tmp_path / "shop.py").write_text("def parse(body):\n    return body\n")
    path = tmp_path / "shop.toml"
    path.write_text(VALID + 'parser = "shop:parse"\n', encoding="utf-8")
    assert load_supplier(path).parse_function()(b"x") == b"x"


def test_the_docs_reference_lists_every_key_with_its_default_and_rule() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \| (.*?) \|$", DOCS.read_text(), re.MULTILINE)
    documented = {name: (default, rule) for name, default, rule in rows}
    expected = {
        name: (
            "required" if field.is_required() else f"`{json.dumps(field.default)}`",
            field.description,
        )
        for name, field in model_reference(SupplierConfig).items()
    }
    assert documented == expected
