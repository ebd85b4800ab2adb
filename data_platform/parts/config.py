"""Supplier configuration (one TOML file per supplier) and page parsers.

A parser turns one response body into a `Listing`; `json_listing` is built in, a dotted path
(`package.module.function` or `package.module:function`) names your own.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from data_platform.parts.errors import PartsError

BUILTIN_SUPPLIERS_DIR = Path(__file__).parent / "suppliers"
DEFAULT_URL_TEMPLATE = "{base_url}/parts?car_type={car_type}&page={page}"
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Listing:
    """One parsed page: its offers (dicts with name, car_type, price, seller, url) and whether
    a next page exists."""

    items: list[dict[str, Any]]
    has_next: bool


Parser = Callable[[bytes], Listing]


def json_listing(body: bytes) -> Listing:
    """`{"items": [{"name", "car_type", "price", "seller", "url"}, ...], "has_next": bool}`."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise ValueError('body is not a listing: expected {"items": [...], "has_next": ...}')
    if not all(isinstance(item, dict) for item in document["items"]):
        raise ValueError("every entry of items must be an object")
    return Listing(document["items"], bool(document.get("has_next", False)))


@dataclass(frozen=True)
class SupplierConfig:
    code: str
    base_url: str
    car_types: tuple[str, ...]
    max_pages: int = 5
    concurrency: int = 8
    requests_per_second: float = 20.0
    timeout_seconds: float = 10.0
    max_retry_rounds: int = 3
    parser: str = "json_listing"
    # Optional knobs (not in the seed's files): attempts per URL within one crawl, the backoff
    # base and cap, the pause before each self-healing round, and the page URL pattern.
    max_attempts: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    round_delay_seconds: float = 5.0
    url_template: str = DEFAULT_URL_TEMPLATE

    def parse_function(self) -> Parser:
        return resolve_parser(self.parser)


def resolve_parser(name: str) -> Parser:
    if name == "json_listing":
        return json_listing
    module_name, sep, attribute = name.partition(":")
    if not sep:
        module_name, _, attribute = name.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PartsError(
            f"parser {name!r} cannot be loaded ({exc}): use 'json_listing' or a dotted path "
            "to a function body -> Listing"
        ) from None
    if not callable(function):
        raise PartsError(f"parser {name!r} is not a function")
    return function


def load_supplier(path: Path, base_url: str | None = None) -> SupplierConfig:
    """Read and check one supplier TOML file; `base_url` overrides the file's."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PartsError(f"{path}: cannot read supplier config ({exc})") from None
    if base_url:
        raw["base_url"] = base_url
    return supplier_from_mapping(raw, str(path))


def supplier_from_mapping(raw: dict[str, Any], source: str) -> SupplierConfig:
    known = {f.name for f in fields(SupplierConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PartsError(
            f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    missing = [name for name in ("code", "base_url", "car_types") if name not in raw]
    if missing:
        raise PartsError(f"{source}: missing {', '.join(missing)}")
    values = dict(raw)
    values["car_types"] = tuple(raw["car_types"]) if isinstance(raw["car_types"], list) else None
    config = SupplierConfig(**values)
    problems = _problems(config)
    if problems:
        raise PartsError(f"{source}: {'; '.join(problems)}")
    return config


def _problems(config: SupplierConfig) -> list[str]:
    problems = []
    if not isinstance(config.code, str) or not _CODE.match(config.code):
        problems.append("code must be 1-63 lowercase letters, digits, '-' or '_'")
    if not isinstance(config.base_url, str) or not config.base_url.startswith(
        ("http://", "https://")
    ):
        problems.append("base_url must start with http:// or https://")
    if not config.car_types or not all(isinstance(c, str) and c.strip() for c in config.car_types):
        problems.append("car_types must be a non-empty list of names")
    for name in ("max_pages", "concurrency", "max_attempts"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            problems.append(f"{name} must be an integer >= 1")
    if not isinstance(config.max_retry_rounds, int) or config.max_retry_rounds < 0:
        problems.append("max_retry_rounds must be an integer >= 0")
    for name in ("requests_per_second", "timeout_seconds"):
        value = getattr(config, name)
        if not isinstance(value, int | float) or value <= 0:
            problems.append(f"{name} must be a number > 0")
    for name in ("backoff_seconds", "max_backoff_seconds", "round_delay_seconds"):
        value = getattr(config, name)
        if not isinstance(value, int | float) or value < 0:
            problems.append(f"{name} must be a number >= 0")
    return problems


def supplier_files(dirs: Iterable[Path]) -> list[Path]:
    """`*.toml` in each folder that exists (later folders add to earlier ones)."""
    return [path for folder in dirs if folder.is_dir() for path in sorted(folder.glob("*.toml"))]


def load_suppliers(dirs: Iterable[Path]) -> dict[str, SupplierConfig]:
    """Every supplier in `dirs` by code; a later file with the same code replaces an earlier."""
    return {config.code: config for config in map(load_supplier, supplier_files(dirs))}
