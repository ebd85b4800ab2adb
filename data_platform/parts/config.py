"""Supplier configuration (one TOML file per supplier) and page parsers.

A parser turns one response body into a `Listing`; `json_listing` is built in, `module:function`
names a function of a `module.py` beside the supplier file (and nothing else can be named).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import string
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
)

from data_platform.core.config_errors import describe_validation_error
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


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_OWN_PARSER = re.compile(rf"^({_NAME}):({_NAME})$")
URL_PLACEHOLDERS = ("base_url", "car_type", "page")
PARSERS: dict[str, Parser] = {"json_listing": json_listing}


def _setting(default: Any, allowed: str, **constraints: Any) -> Any:
    """A supplier file key; `allowed` ("must be ...") is both its error message and its line in
    docs/parts.md."""
    return Field(default, description=allowed, **constraints)


class SupplierConfig(BaseModel):
    """One supplier file. TOML gives real types, so a quoted number is refused, not converted."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    code: str = _setting(
        ..., "must be 1-63 lowercase letters, digits, '-' or '_'", pattern=_CODE.pattern
    )
    base_url: str = _setting(..., "must start with http:// or https://", pattern="^https?://")
    car_types: tuple[Annotated[str, StringConstraints(pattern=r"\S")], ...] = _setting(
        ..., "must be a non-empty list of names", min_length=1, strict=False
    )
    max_pages: int = _setting(5, "must be an integer >= 1: pages asked for per car type", ge=1)
    concurrency: int = _setting(8, "must be an integer >= 1: requests in flight", ge=1)
    requests_per_second: float = _setting(
        20.0, "must be a number > 0: request starts per second", gt=0
    )
    timeout_seconds: float = _setting(
        10.0, "must be a number > 0: deadline of one whole request", gt=0
    )
    max_retry_rounds: int = _setting(3, "must be an integer >= 0: self-healing rounds", ge=0)
    parser: str = _setting(
        "json_listing",
        "must be 'json_listing' or 'module:function' of a module.py beside the supplier file",
    )
    # Optional knobs (not in the seed's files)
    max_attempts: int = _setting(
        4, "must be an integer >= 1: attempts per URL within one crawl", ge=1
    )
    backoff_seconds: float = _setting(0.5, "must be a number >= 0: first retry wait", ge=0)
    max_backoff_seconds: float = _setting(30.0, "must be a number >= 0: longest retry wait", ge=0)
    round_delay_seconds: float = _setting(
        5.0, "must be a number >= 0: pause before each round", ge=0
    )
    url_template: str = _setting(
        DEFAULT_URL_TEMPLATE, "must be a pattern using only {base_url}, {car_type} and {page}"
    )
    # where the supplier file lives: its own parsers are module.py files there
    _folder: Path | None = PrivateAttr(default=None)

    @field_validator("url_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        allowed = ", ".join(f"{{{name}}}" for name in URL_PLACEHOLDERS)
        try:
            names = [
                name for _, name, _, _ in string.Formatter().parse(template) if name is not None
            ]
            unknown = [name for name in names if name not in URL_PLACEHOLDERS]
            if not unknown:
                template.format(base_url="http://x", car_type="x", page=1)
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise ValueError(
                f"{template!r} cannot be filled in ({exc}) (allowed: {allowed})"
            ) from None
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}} in {template!r} (allowed: {allowed})"
            )
        return template

    @field_validator("parser")
    @classmethod
    def _parser_name(cls, name: str) -> str:
        if name not in PARSERS and not _OWN_PARSER.match(name):
            raise ValueError(
                f"{name!r} is neither a built-in parser ({', '.join(sorted(PARSERS))}) nor "
                "'module:function' of a module.py beside the supplier file"
            )
        return name

    def model_post_init(self, context: Any) -> None:
        self._folder = (context or {}).get("folder")
        self.parse_function()  # a parser that cannot be loaded fails at load time

    def parse_function(self) -> Parser:
        return resolve_parser(self.parser, self._folder)


def resolve_parser(name: str, folder: Path | None) -> Parser:
    """A registered parser, or `function` of `folder/module.py` (only there: never any module
    on the import path, which would let a config file call `os:system`)."""
    if name in PARSERS:
        return PARSERS[name]
    match = _OWN_PARSER.match(name)
    if match is None or folder is None:
        raise PartsError(
            f"parser {name!r} is not one of {', '.join(sorted(PARSERS))}; own parsers are "
            "'module:function' of a module.py beside a supplier file"
        )
    return _own_parser(folder.resolve() / f"{match[1]}.py", match[2], name)


@functools.cache
def _own_parser(path: Path, attribute: str, name: str) -> Parser:
    spec = importlib.util.spec_from_file_location(f"_parts_parser_{abs(hash(path))}", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise PartsError(
            f"parser {name!r}: no file {path}; a parser is one of {', '.join(sorted(PARSERS))} "
            "or 'module:function' of a module.py beside the supplier file"
        )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module may fail in any way
        raise PartsError(f"parser {name!r}: {path} cannot be loaded ({exc!r})") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise PartsError(f"parser {name!r}: {path} has no function {attribute}")
    return function


def load_supplier(path: Path, base_url: str | None = None) -> SupplierConfig:
    """Read and check one supplier TOML file; `base_url` overrides the file's."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PartsError(f"{path}: cannot read supplier config ({exc})") from None
    if base_url:
        raw["base_url"] = base_url
    return supplier_from_mapping(raw, str(path), Path(path).parent)


def supplier_from_mapping(
    raw: dict[str, Any], source: str, folder: Path | None = None
) -> SupplierConfig:
    """A checked config; every problem in one line naming `source`, the key and what is allowed."""
    try:
        return SupplierConfig.model_validate(raw, context={"folder": folder})
    except ValidationError as exc:
        raise PartsError(describe_validation_error(source, exc, SupplierConfig, raw)) from None
    except PartsError as exc:
        raise PartsError(f"{source}: {exc}") from None


def supplier_files(dirs: Iterable[Path]) -> list[Path]:
    """`*.toml` in each folder that exists (later folders add to earlier ones)."""
    return [path for folder in dirs if folder.is_dir() for path in sorted(folder.glob("*.toml"))]


def load_suppliers(dirs: Iterable[Path]) -> dict[str, SupplierConfig]:
    """Every supplier in `dirs` by code; a later file with the same code replaces an earlier."""
    return {config.code: config for config in map(load_supplier, supplier_files(dirs))}
