"""Table presets: which raw dataset lands in which Postgres table, with which columns and types.

A preset is data (TOML or JSON), not code: the built-ins live in `silver/presets/`, users add or
override their own in a presets folder. Column types are checked against a small grammar because
they are spliced into DDL (identifiers go through psycopg2.sql; a type name cannot).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILTIN_PRESETS_DIR = Path(__file__).with_name("presets")
DEFAULT_PRESETS_DIR = Path("presets")
PRESETS_DIR_VARIABLE = "DATA_PLATFORM_PRESETS_DIR"
MAX_NAME_BYTES = 63
_FILE_NAME = re.compile(r"\w[\w.-]*")  # \w: Unicode letters and digits (Korean too) and "_"
_IDENTIFIER = re.compile(r"\w[\w-]*")
DEFAULT_SNAPSHOT_COLUMNS = ("source_year", "source_month", "region", "sigungu")
FILE_FORMATS = ("auto", "csv", "parquet")
PRESET_SUFFIXES = (".toml", ".json")

INTEGER_TYPES = frozenset({"smallint", "integer", "bigint", "int", "int2", "int4", "int8"})
DECIMAL_TYPES = frozenset({"numeric", "decimal", "real", "double precision", "float4", "float8"})
TEXT_TYPES = frozenset({"text", "varchar", "character varying", "char", "character", "bpchar"})
TEMPORAL_TYPES = frozenset(
    {
        "date",
        "timestamp",
        "timestamptz",
        "timestamp without time zone",
        "timestamp with time zone",
        "time",
        "time without time zone",
        "interval",
    }
)
OTHER_TYPES = frozenset({"boolean", "bool", "uuid", "json", "jsonb"})
KNOWN_BASE_TYPES = INTEGER_TYPES | DECIMAL_TYPES | TEXT_TYPES | TEMPORAL_TYPES | OTHER_TYPES
_TYPE_GRAMMAR = re.compile(r"^(?P<base>[a-z][a-z0-9 ]*?)\s*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")


class PresetError(ValueError):
    """A preset is missing or malformed; the message names the preset or file and the field."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    pg_type: str

    @property
    def base_type(self) -> str:
        return base_type(self.pg_type)


@dataclass(frozen=True)
class TablePreset:
    """Where one raw dataset lands; `columns` lists every table column, snapshot ones too."""

    name: str
    dataset: str
    schema: str
    table: str
    columns: tuple[ColumnSpec, ...]
    snapshot_columns: tuple[str, str, str, str] = DEFAULT_SNAPSHOT_COLUMNS
    file_format: str = "auto"
    ignore_extra_columns: bool = False

    def __post_init__(self) -> None:
        validate_preset(self)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def data_columns(self) -> tuple[ColumnSpec, ...]:
        """The columns a file must carry (everything but the snapshot columns)."""
        return tuple(c for c in self.columns if c.name not in self.snapshot_columns)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


def base_type(pg_type: str) -> str:
    """`numeric(10, 2)` -> `numeric`; raises PresetError for anything outside the grammar."""
    match = _TYPE_GRAMMAR.match(" ".join(pg_type.lower().split()))
    if not match or match.group("base") not in KNOWN_BASE_TYPES:
        known = ", ".join(sorted(KNOWN_BASE_TYPES))
        raise PresetError(f"unsupported column type {pg_type!r}; use one of: {known}")
    return match.group("base")


def _check_name(where: str, field_name: str, value: str) -> None:
    """Preset and dataset names become file names and S3 folders, schema and table names
    Postgres identifiers (which Postgres cuts silently past 63 bytes): keep them plain."""
    if not value:
        raise PresetError(f"{where}: `{field_name}` must not be empty")
    pattern = _FILE_NAME if field_name in ("name", "dataset") else _IDENTIFIER
    if not pattern.fullmatch(value) or len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise PresetError(
            f"{where}: `{field_name}` {value!r} must be letters, digits, '_' or '-' (a name "
            f"may also hold '.', not first), at most {MAX_NAME_BYTES} bytes; no '/' or '..'"
        )


def validate_preset(preset: TablePreset) -> None:
    where = f"preset {preset.name!r}"
    for field_name in ("name", "dataset", "schema", "table"):
        _check_name(where, field_name, getattr(preset, field_name))
    if preset.file_format not in FILE_FORMATS:
        raise PresetError(f"{where}: file_format must be one of {FILE_FORMATS}")
    if not preset.columns:
        raise PresetError(f"{where}: no columns")
    names = [c.name for c in preset.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PresetError(f"{where}: duplicate columns {duplicates}")
    if len(preset.snapshot_columns) != 4 or len(set(preset.snapshot_columns)) != 4:
        raise PresetError(f"{where}: snapshot_columns must name 4 distinct columns")
    missing = [n for n in preset.snapshot_columns if n not in names]
    if missing:
        raise PresetError(f"{where}: snapshot columns {missing} must also be listed in columns")
    for column in preset.columns:
        try:
            kind = base_type(column.pg_type)
        except PresetError as exc:
            raise PresetError(f"{where}: column {column.name!r}: {exc}") from None
        if column.name in preset.snapshot_columns[:2] and kind not in INTEGER_TYPES | TEXT_TYPES:
            raise PresetError(f"{where}: {column.name!r} (year/month) must be an integer or text")
        if column.name in preset.snapshot_columns[2:] and kind not in TEXT_TYPES:
            raise PresetError(f"{where}: {column.name!r} (region/sigungu) must be text")


def preset_from_mapping(data: Mapping[str, Any], origin: str) -> TablePreset:
    """Build a preset from parsed TOML/JSON; `columns` is a table of name -> type (in order)."""
    from pydantic import ValidationError

    from data_platform.core.config_errors import describe_validation_error
    from data_platform.silver.preset_file import PresetFile

    try:
        keys = PresetFile.model_validate(data)
    except ValidationError as exc:
        raise PresetError(describe_validation_error(origin, exc, PresetFile)) from None
    name = keys.name or Path(origin).stem
    try:
        return TablePreset(
            name=name,
            dataset=keys.dataset or name,
            schema=keys.schema_,
            table=keys.table or name,
            columns=tuple(ColumnSpec(k, v) for k, v in keys.columns.items()),
            snapshot_columns=tuple(keys.snapshot_columns),  # type: ignore[arg-type]
            file_format=keys.file_format,
            ignore_extra_columns=keys.ignore_extra_columns,
        )
    except PresetError as exc:
        raise PresetError(f"{origin}: {exc}") from None


def read_preset_file(path: Path) -> TablePreset:
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PresetError(f"cannot read preset {path}: {exc}") from None
    if not isinstance(data, Mapping):
        raise PresetError(f"{path}: a preset file holds one table of fields")
    return preset_from_mapping(data, str(path))


def _preset_files(presets_dir: Path | None) -> list[Path]:
    folders = [BUILTIN_PRESETS_DIR] + ([Path(presets_dir)] if presets_dir else [])
    return [
        path
        for folder in folders
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.suffix in PRESET_SUFFIXES and not path.name.startswith(".")
    ]


def list_presets(
    presets_dir: Path | None = None, on_error: Callable[[PresetError], None] | None = None
) -> list[TablePreset]:
    """Built-in presets, then the user's; a user preset with a built-in's name replaces it.
    A malformed file raises PresetError, or, given `on_error`, is passed to it and skipped."""
    by_name: dict[str, TablePreset] = {}
    for path in _preset_files(presets_dir):
        try:
            preset = read_preset_file(path)
        except PresetError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        by_name[preset.name] = preset
    return sorted(by_name.values(), key=lambda p: p.name)


def user_presets_dir(env: Mapping[str, str]) -> Path:
    """The user's presets folder: DATA_PLATFORM_PRESETS_DIR, else ./presets."""
    return Path(env.get(PRESETS_DIR_VARIABLE) or DEFAULT_PRESETS_DIR)


def load_preset(name: str, presets_dir: Path | None = None) -> TablePreset:
    presets = {p.name: p for p in list_presets(presets_dir)}
    if name in presets:
        return presets[name]
    where = f"{BUILTIN_PRESETS_DIR}" + (f" and {presets_dir}" if presets_dir else "")
    raise PresetError(
        f"no table preset named {name!r} (looked in {where}); known presets: "
        f"{', '.join(sorted(presets)) or 'none'}. Add {name}.toml to the presets folder "
        "or run `data-platform silver load --infer-schema` to derive one from the files."
    )


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings are valid TOML basic strings


def preset_to_toml(preset: TablePreset, comment: str = "") -> str:
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines += [
        f"name = {_toml_string(preset.name)}",
        f"dataset = {_toml_string(preset.dataset)}",
        f"schema = {_toml_string(preset.schema)}",
        f"table = {_toml_string(preset.table)}",
        f"file_format = {_toml_string(preset.file_format)}",
        f"ignore_extra_columns = {'true' if preset.ignore_extra_columns else 'false'}",
        "snapshot_columns = [" + ", ".join(map(_toml_string, preset.snapshot_columns)) + "]",
        "",
        "[columns]  # column name = Postgres type, in table order",
    ]
    lines += [f"{_toml_string(c.name)} = {_toml_string(c.pg_type)}" for c in preset.columns]
    return "\n".join(lines) + "\n"


def save_preset(preset: TablePreset, presets_dir: Path, comment: str = "") -> Path:
    """Write `<presets_dir>/<name>.toml`; refuses to overwrite an existing preset file."""
    path = presets_dir / f"{preset.name}.toml"
    presets_dir.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(preset_to_toml(preset, comment))
    except FileExistsError:
        raise PresetError(f"{path} already exists; edit it or remove it first") from None
    return path
