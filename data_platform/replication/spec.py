"""The YAML spec: connections (URLs with `${VAR}` expanded at run time) and the tables to copy.

The file's format is the pydantic models below (`SpecFile`, `TableEntry`, `Endpoint`,
`ConnectionEntry`: unknown keys are refused); a valid file becomes a ReplicationSpec. Every
mistake is one line naming the file, the entry, the key and what is allowed.

Expanded URLs are never kept on these objects: a connection stores the text as written, and
`connection_settings` expands it into a PostgresSettings (whose repr masks the password).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    model_validator,
)

from data_platform.core.config_errors import SECRET, describe_validation_error, location
from data_platform.core.postgres import PostgresError, PostgresSettings, mask_url
from data_platform.replication.durations import parse_duration
from data_platform.replication.errors import SpecError
from data_platform.replication.tables import TableRef, parse_table_ref

SPEC_ENV_VAR = "DATA_PLATFORM_REPLICATION_SPEC"
DEFAULT_SPEC_PATH = Path("replication.yaml")
Strategy = Literal["merge", "upsert", "delete_insert", "replace"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
NullWatermark = Literal["include", "skip"]
NULL_WATERMARKS: tuple[str, ...] = get_args(NullWatermark)
# How far before the last mark a run reads again: a duration for a date/time watermark, a
# number for a numeric one.
Lookback = timedelta | int | float
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    url_template: str = field(repr=False)  # as written; may hold ${VAR} references

    def __repr__(self) -> str:
        return f"ConnectionSpec(name={self.name!r}, url={mask_url(self.url_template)!r})"

    def variables(self) -> list[str]:
        return _VARIABLE.findall(self.url_template)


@dataclass(frozen=True)
class TableSpec:
    name: str
    source_connection: str
    source_table: TableRef
    target_connection: str
    target_table: TableRef
    primary_key: tuple[str, ...] | None = None
    strategy: str = "merge"
    where: str | None = None  # trusted SQL from the spec file, never from elsewhere
    watermark: str | None = None
    lookback: Lookback | None = None
    null_watermark: str = "include"
    upstream: str | None = None  # a Dagster asset key path as written, e.g. silver/orders

    def copy_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `DataCopyEngine.copy_with_staging_table` (and `plan`)."""
        return {
            "source_table": self.source_table,
            "target_table": self.target_table,
            "primary_keys": self.primary_key,
            "where_condition": self.where,
            "strategy": self.strategy,
            "watermark": self.watermark,
            "lookback": self.lookback,
            "null_watermark": self.null_watermark,
        }


@dataclass(frozen=True)
class ReplicationSpec:
    connections: dict[str, ConnectionSpec]
    tables: tuple[TableSpec, ...]

    def select(self, names: Iterable[str] = ()) -> list[TableSpec]:
        """The tables named (all when none are), in spec order."""
        wanted = list(names)
        known = {t.name for t in self.tables}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SpecError(
                f"no table named {', '.join(unknown)} in the spec (known: "
                f"{', '.join(sorted(known))})"
            )
        return [t for t in self.tables if not wanted or t.name in wanted]


# --- the file's format -------------------------------------------------------------------------


def _table_ref(value: Any) -> TableRef:
    return parse_table_ref(value)  # its ValueError becomes the field's error


def _lookback(value: Any) -> Lookback:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{value} is negative; use 0 or more")
        return value
    raise ValueError(f"{value!r} is neither a duration such as 10m nor a number")


BLANK_PATTERN = r"\S"  # a text with something in it
Text = Annotated[str, StringConstraints(pattern=BLANK_PATTERN)]
_FILE = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConnectionEntry(BaseModel):
    model_config = _FILE

    url: str = Field(
        description="a postgresql:// URL; `${VAR}` parts are taken from the environment at run "
        'time (e.g. "${SOURCE_PG_URL}")'
    )


class Endpoint(BaseModel):
    model_config = _FILE

    connection: str = Field(description="the name of an entry under `connections`")
    table: Annotated[TableRef, PlainValidator(_table_ref)] = Field(
        description='`schema.table` (quote a part as in SQL: `s."We;ird ""Tab"`; no schema means '
        "public) or a mapping {schema: ..., name: ...}"
    )


class TableEntry(BaseModel):
    model_config = _FILE

    name: Text | None = Field(
        None, description="a non-empty string (default: the target table's name)"
    )
    source: Endpoint = Field(description="{connection: ..., table: ...}")
    target: Endpoint = Field(description="{connection: ..., table: ...}")
    primary_key: Annotated[list[Text], Field(min_length=1)] | None = Field(
        None,
        description="a non-empty list of column names (default: the source's primary key)",
    )
    strategy: Strategy = Field("merge", description="one of " + ", ".join(STRATEGIES))
    where: Text | None = Field(None, description="a non-empty SQL condition on the source")
    watermark: Text | None = Field(
        None,
        description="a non-empty column name",
    )
    lookback: Annotated[Lookback, PlainValidator(_lookback)] | None = Field(
        None,
        description="a duration such as 10m (date/time watermark) or a number of 0 or more "
        "(numeric watermark)",
    )
    null_watermark: NullWatermark = Field(
        "include",
        description="include or skip",
    )
    upstream: Annotated[str, StringConstraints(pattern=r"^[^/\s]+(/[^/\s]+)*$")] | None = Field(
        None, description="an asset key path such as silver/orders"
    )

    @model_validator(mode="after")
    def _watermark_options(self) -> TableEntry:
        if self.watermark and self.strategy == "replace":
            raise ValueError(
                "watermark cannot be used with strategy replace "
                "(an incremental run would drop every older row)"
            )
        for option in ("lookback", "null_watermark"):
            if option in self.model_fields_set and not self.watermark:
                raise ValueError(f"{option} needs a `watermark` column")
        return self


class SpecFile(BaseModel):
    model_config = _FILE

    connections: dict[str, ConnectionEntry] = Field(
        min_length=1,
        description="a non-empty mapping of names to {url: ...}",
        json_schema_extra=SECRET,  # URLs hold passwords: no value beneath is ever echoed
    )
    tables: list[TableEntry] = Field(min_length=1, description="a non-empty list of table entries")


# --- loading -----------------------------------------------------------------------------------


def spec_path(env: Mapping[str, str]) -> Path:
    """The spec file the Dagster code location reads: $DATA_PLATFORM_REPLICATION_SPEC or
    ./replication.yaml."""
    return Path(env.get(SPEC_ENV_VAR) or DEFAULT_SPEC_PATH)


def load_spec(path: Path) -> ReplicationSpec:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read the spec {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
            "save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_spec(data, str(path))


def parse_spec(data: Any, origin: str = "the spec") -> ReplicationSpec:
    """A checked spec; every mistake is one line naming `origin` (the file), the entry and key."""
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: the spec must be a mapping with `connections` and `tables`")
    try:
        parsed = SpecFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(origin, exc, SpecFile, data)) from None
    connections = {name: ConnectionSpec(name, c.url) for name, c in parsed.connections.items()}
    tables = tuple(
        _table_spec(f"{origin}: {location(('tables', i), data)}", entry, connections)
        for i, entry in enumerate(parsed.tables)
    )
    seen: set[str] = set()
    for table in tables:
        if table.name in seen:
            raise SpecError(
                f"{origin}: two tables are named {table.name!r}; give one a different `name`"
            )
        seen.add(table.name)
    return ReplicationSpec(connections, tables)


def connection_settings(
    spec: ReplicationSpec, table: TableSpec, side: str, env: Mapping[str, str]
) -> PostgresSettings:
    """Expand the `source` or `target` connection of `table` from `env`."""
    name = table.source_connection if side == "source" else table.target_connection
    connection = spec.connections[name]
    where = f"table {table.name!r}: {side}.connection {name!r}"
    missing = [v for v in connection.variables() if not env.get(v)]
    if missing:
        raise SpecError(f"{where}: url needs ${{{missing[0]}}}, which is not set; export it")
    url = _VARIABLE.sub(lambda m: env[m.group(1)], connection.url_template)
    try:
        return PostgresSettings.from_url(url)
    except (PostgresError, ValueError):
        raise SpecError(f"{where}: url is not a postgresql:// URL") from None


def _table_spec(label: str, entry: TableEntry, connections: dict[str, ConnectionSpec]) -> TableSpec:
    for side, endpoint in (("source", entry.source), ("target", entry.target)):
        if endpoint.connection not in connections:
            raise SpecError(
                f"{label}.{side}.connection: unknown connection {endpoint.connection!r} "
                f"(defined: {', '.join(sorted(connections))})"
            )
    return TableSpec(
        name=entry.name or entry.target.table.name,
        source_connection=entry.source.connection,
        source_table=entry.source.table,
        target_connection=entry.target.connection,
        target_table=entry.target.table,
        primary_key=tuple(entry.primary_key) if entry.primary_key else None,
        strategy=entry.strategy,
        where=entry.where,
        watermark=entry.watermark,
        lookback=entry.lookback,
        null_watermark=entry.null_watermark,
        upstream=entry.upstream,
    )
