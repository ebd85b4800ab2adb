"""The YAML spec: connections (URLs with `${VAR}` expanded at run time) and the tables to copy.

Expanded URLs are never kept on these objects: a connection stores the text as written, and
`connection_settings` expands it into a PostgresSettings (whose repr masks the password).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_platform.core.postgres import PostgresError, PostgresSettings, mask_url
from data_platform.replication.errors import SpecError
from data_platform.replication.tables import TableRef, parse_table_ref

SPEC_ENV_VAR = "DATA_PLATFORM_REPLICATION_SPEC"
DEFAULT_SPEC_PATH = Path("replication.yaml")
STRATEGIES = ("merge", "upsert", "delete_insert", "replace")
TABLE_KEYS = {"name", "source", "target", "primary_key", "strategy", "where", "watermark"}
REQUIRED_TABLE_KEYS = ("source", "target")
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

    def copy_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `DataCopyEngine.copy_with_staging_table` (and `plan`)."""
        return {
            "source_table": self.source_table,
            "target_table": self.target_table,
            "primary_keys": self.primary_key,
            "where_condition": self.where,
            "strategy": self.strategy,
            "watermark": self.watermark,
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
    try:
        return parse_spec(data)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def parse_spec(data: Any) -> ReplicationSpec:
    if not isinstance(data, dict):
        raise SpecError("the spec must be a mapping with `connections` and `tables`")
    _no_unknown_keys(data, {"connections", "tables"}, "the spec")
    connections = _parse_connections(data.get("connections"))
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, list) or not raw_tables:
        raise SpecError("`tables` must be a non-empty list")
    tables = tuple(_parse_table(i, entry, connections) for i, entry in enumerate(raw_tables))
    seen: set[str] = set()
    for table in tables:
        if table.name in seen:
            raise SpecError(f"two tables are named {table.name!r}; give one a different `name`")
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


def _parse_connections(raw: Any) -> dict[str, ConnectionSpec]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError("`connections` must map names to {url: ...}")
    connections = {}
    for name, body in raw.items():
        where = f"connection {name!r}"
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise SpecError(f'{where}: needs `url` (a string such as "${{SOURCE_PG_URL}}")')
        _no_unknown_keys(body, {"url"}, where)
        connections[str(name)] = ConnectionSpec(str(name), body["url"])
    return connections


def _parse_table(index: int, entry: Any, connections: dict[str, ConnectionSpec]) -> TableSpec:
    if not isinstance(entry, dict):
        raise SpecError(f"tables[{index}]: must be a mapping")
    named = entry.get("name")
    label = f"tables[{index}]" + (f" ({named})" if isinstance(named, str) else "")
    _no_unknown_keys(entry, TABLE_KEYS, label)
    for key in REQUIRED_TABLE_KEYS:
        if key not in entry:
            raise SpecError(f"{label}: missing `{key}`")
    source_conn, source = _endpoint(entry["source"], connections, f"{label}: source")
    target_conn, target = _endpoint(entry["target"], connections, f"{label}: target")
    strategy = entry.get("strategy", "merge")
    if strategy not in STRATEGIES:
        raise SpecError(f"{label}: strategy {strategy!r} is unknown (use {', '.join(STRATEGIES)})")
    key = entry.get("primary_key")
    if key is not None and (
        not isinstance(key, list) or not key or not all(isinstance(c, str) and c for c in key)
    ):
        raise SpecError(f"{label}: primary_key must be a non-empty list of column names")
    for field_name in ("name", "where", "watermark"):
        value = entry.get(field_name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise SpecError(f"{label}: {field_name} must be a non-empty string")
    if entry.get("watermark") and strategy == "replace":
        raise SpecError(
            f"{label}: watermark cannot be used with strategy replace "
            "(an incremental run would drop every older row)"
        )
    return TableSpec(
        name=entry.get("name") or target.name,
        source_connection=source_conn,
        source_table=source,
        target_connection=target_conn,
        target_table=target,
        primary_key=tuple(key) if key else None,
        strategy=strategy,
        where=entry.get("where"),
        watermark=entry.get("watermark"),
    )


def _endpoint(raw: Any, connections: dict[str, ConnectionSpec], where: str) -> tuple[str, TableRef]:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a mapping {{connection: ..., table: ...}}")
    _no_unknown_keys(raw, {"connection", "table"}, where)
    for key in ("connection", "table"):
        if key not in raw:
            raise SpecError(f"{where}: missing `{key}`")
    name = raw["connection"]
    if name not in connections:
        raise SpecError(
            f"{where}.connection: unknown connection {name!r} "
            f"(defined: {', '.join(sorted(connections))})"
        )
    try:
        return name, parse_table_ref(raw["table"])
    except ValueError as exc:
        raise SpecError(f"{where}.table: {exc}") from None


def _no_unknown_keys(mapping: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        allowed_list = ", ".join(sorted(allowed))
        raise SpecError(f"{where}: unknown key {unknown[0]!r} (allowed: {allowed_list})")
