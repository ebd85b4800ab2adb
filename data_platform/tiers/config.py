"""Providers and key layout: which columns identify a row, which carry values, where files live.

`environment` is always an argument ("test" puts every key under `test/`); nothing here reads the
process environment, so importing the module never fixes a configuration.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from data_platform.core.config_errors import describe_validation_error

CEASED = "Ceased"
TIME = "Time"
TIME_DTYPE = pl.Datetime("us", "UTC")
SLOT = timedelta(minutes=10)
ENVIRONMENTS = ("production", "test")
# A read of month M opens M-1's manifest and a compaction may rebuild M+1's checkpoint, so a
# month the caller names needs both neighbours inside datetime's years 1..9999.
FIRST_MONTH, LAST_MONTH = "0001-02", "9999-11"


_SUPPORTED = f"the supported months {FIRST_MONTH} to {LAST_MONTH}"


class TiersError(ValueError):
    """Bad input or an unusable store state; the message says what is wrong and what to do."""


class ProviderConfigError(TiersError):
    """A provider's settings break a rule; the message names the key and what is allowed."""


DTYPES: dict[str, pl.DataType] = {
    str(dtype): dtype
    for dtype in (
        pl.String(),
        pl.Float64(),
        pl.Float32(),
        pl.Int64(),
        pl.Int32(),
        pl.Int16(),
        pl.Int8(),
        pl.Boolean(),
    )
}
DtypeName = Literal["String", "Float64", "Float32", "Int64", "Int32", "Int16", "Int8", "Boolean"]
ColumnName = Annotated[str, Field(min_length=1)]


class ProviderSchema(BaseModel):
    """A provider's change-log schema: the keys of one table of a provider file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pk_columns: tuple[ColumnName, ...] = Field(
        min_length=1, description="a list of at least one column name"
    )
    value_columns: tuple[ColumnName, ...] = Field(
        min_length=1, description="a list of at least one column name"
    )
    dtypes: dict[str, DtypeName] = Field(
        default_factory=dict, description="a table of column = type name"
    )
    score_column: str | None = Field(default=None, description="one of the value_columns")

    @field_validator("pk_columns", "value_columns")
    @classmethod
    def _distinct_columns(cls, columns: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        earlier = info.data.get("pk_columns", ()) if info.field_name == "value_columns" else ()
        names = [*earlier, *columns]
        if len(set(names)) != len(names) or {CEASED, TIME} & set(names):
            raise ValueError(
                f"columns must be distinct (pk and value columns together) and not "
                f"{CEASED!r}/{TIME!r}"
            )
        return columns

    @field_validator("dtypes", mode="before")
    @classmethod
    def _dtype_names(cls, value: Any) -> Any:
        """polars types (pl.Int32()) are accepted as well as their names ("Int32")."""
        if isinstance(value, Mapping):
            return {k: str(v) if isinstance(v, pl.DataType) else v for k, v in value.items()}
        return value

    @field_validator("dtypes")
    @classmethod
    def _dtypes_of_known_columns(cls, dtypes: dict[str, str], info: ValidationInfo) -> dict:
        names = [*info.data.get("pk_columns", ()), *info.data.get("value_columns", ())]
        unknown = [column for column in dtypes if column not in names]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} is not a pk or value column ({', '.join(names)})"
            )
        return dtypes

    @field_validator("score_column")
    @classmethod
    def _score_among_values(cls, column: str | None, info: ValidationInfo) -> str | None:
        values = info.data.get("value_columns", ())
        if column is not None and column not in values:
            raise ValueError(f"not one of the value_columns ({', '.join(values)})")
        return column


class ProviderConfig(ProviderSchema):
    """One provider: its name and schema. pk columns default to String, value columns to Float64."""

    name: str

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            origin = f"provider {fields.get('name')!r}"
            raise ProviderConfigError(
                describe_validation_error(origin, exc, ProviderConfig)
            ) from None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not name or "/" in name:
            raise ValueError("must be non-empty without '/'")
        return name

    @property
    def schema_dtypes(self) -> dict[str, pl.DataType]:
        """Every column of a hot or warm file, in canonical order, with its polars dtype."""
        schema: dict[str, pl.DataType] = {}
        for column in self.pk_columns:
            schema[column] = DTYPES[self.dtypes.get(column, "String")]
        for column in self.value_columns:
            schema[column] = DTYPES[self.dtypes.get(column, "Float64")]
        schema[CEASED] = pl.Boolean()
        schema[TIME] = TIME_DTYPE
        return schema

    @property
    def canonical_columns(self) -> list[str]:
        return list(self.schema_dtypes)

    def hot_prefix(self, environment: str = "production") -> str:
        return f"{environment_prefix(environment)}parquet_cp_hot/{self.name}"

    def warm_prefix(self, environment: str = "production") -> str:
        return f"{environment_prefix(environment)}parquet_warm/{self.name}/m8"


_PROVIDERS: dict[str, ProviderConfig] = {
    "aws": ProviderConfig(
        name="aws",
        pk_columns=("InstanceType", "Region", "AZ"),
        value_columns=("SPS",),
        dtypes={"SPS": "Int32"},
        score_column="SPS",
    ),
    "azure": ProviderConfig(
        name="azure",
        pk_columns=("InstanceType", "Region", "AvailabilityZone"),
        value_columns=("Score",),
        score_column="Score",
    ),
    "gcp": ProviderConfig(
        name="gcp",
        pk_columns=("InstanceType", "Region"),
        value_columns=("Score",),
        score_column="Score",
    ),
}


def get_config(provider: str) -> ProviderConfig:
    try:
        return _PROVIDERS[provider]
    except KeyError:
        known = ", ".join(sorted(_PROVIDERS))
        raise TiersError(
            f"unknown provider {provider!r}: known providers are {known} "
            "(add one with register_provider)"
        ) from None


def register_provider(config: ProviderConfig, *, replace: bool = False) -> ProviderConfig:
    """Make `config` known by its name; an existing different one needs `replace=True`."""
    existing = _PROVIDERS.get(config.name)
    if existing is not None and existing != config and not replace:
        raise TiersError(f"provider {config.name!r} is already registered; pass replace=True")
    _PROVIDERS[config.name] = config
    return config


def load_provider_file(path: Path) -> list[ProviderConfig]:
    """Register every provider of a TOML file: one table per provider, named by the provider, whose
    keys are ProviderSchema's fields (docs/tiers.md lists them)."""
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TiersError(f"provider file {path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TiersError(f"provider file {path} is not TOML: {exc}") from None
    configs = []
    for name, table in tables.items():
        where = f"provider file {path}, [{name}]"
        if not isinstance(table, dict):
            raise TiersError(f"{where}: must be a table of pk_columns, value_columns, ...")
        try:
            schema = ProviderSchema.model_validate(table)
        except ValidationError as exc:
            raise TiersError(describe_validation_error(where, exc, ProviderSchema)) from None
        try:
            config = ProviderConfig(name=name, **dict(schema))
        except ProviderConfigError as exc:
            raise TiersError(f"{where}: {exc}") from None
        existing = _PROVIDERS.get(name)
        if existing is not None and existing != config:
            raise TiersError(
                f"{where}: a different provider {name!r} is already known "
                f"({', '.join(known_providers())}); give this one another name"
            )
        configs.append(config)
    for config in configs:
        register_provider(config)
    return configs


def known_providers() -> list[str]:
    return sorted(_PROVIDERS)


def configured_providers(path: Path) -> list[str]:
    """The built-in providers plus those of `path` (read when the code location loads, like
    training_tasks.toml); just the built-ins when the file does not exist."""
    if Path(path).exists():
        load_provider_file(Path(path))
    return known_providers()


def environment_prefix(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise TiersError(f"environment {environment!r} is not one of {', '.join(ENVIRONMENTS)}")
    return "test/" if environment == "test" else ""


def require_aware(moment: datetime, name: str = "timestamp") -> datetime:
    """The moment in UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(moment, datetime):
        raise TiersError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TiersError(
            f"{name} {moment.isoformat()} is timezone-naive: pass an aware datetime, "
            "e.g. datetime(..., tzinfo=timezone.utc)"
        )
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not FIRST_MONTH <= month_of(utc) <= LAST_MONTH:
        raise TiersError(f"{name} {moment.isoformat()} is outside {_SUPPORTED}")
    return utc


def slot_start(moment: datetime) -> datetime:
    """The start of the 10-minute slot holding `moment` (14:23 -> 14:20), in UTC."""
    moment = require_aware(moment)
    return moment.replace(minute=moment.minute - moment.minute % 10, second=0, microsecond=0)


def month_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def parse_month(month: str) -> datetime:
    """'2026-01' -> 2026-01-01T00:00Z; anything else is a clear error."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise TiersError(f"month {month!r} is not YYYY-MM (e.g. 2026-01)") from None
    return start


def require_month(month: str) -> str:
    """A month the caller named, checked: YYYY-MM with both neighbours representable."""
    start = parse_month(month)
    if not FIRST_MONTH <= month_of(start) <= LAST_MONTH:
        raise TiersError(f"month {month!r} is outside {_SUPPORTED}")
    return month_of(start)


def next_month(month: str) -> str:
    start = parse_month(month)
    if month_of(start) == "9999-12":
        raise TiersError(f"month {month} has no next month; {_SUPPORTED}")
    return f"{start.year + start.month // 12:04d}-{start.month % 12 + 1:02d}"


def previous_month(month: str) -> str:
    start = parse_month(month)
    if month_of(start) == "0001-01":
        raise TiersError(f"month {month} has no previous month; {_SUPPORTED}")
    year, index = divmod(start.year * 12 + start.month - 2, 12)
    return f"{year:04d}-{index + 1:02d}"


def hot_key(config: ProviderConfig, moment: datetime, environment: str = "production") -> str:
    slot = slot_start(moment)
    return f"{config.hot_prefix(environment)}/{slot:%Y/%m/%d/%H-%M}.parquet"


def slot_of_hot_key(key: str) -> datetime:
    """The slot start encoded in a hot key's last four segments (YYYY/MM/DD/HH-MM.parquet)."""
    try:
        tail = "/".join(key.removesuffix(".parquet").split("/")[-4:])
        return datetime.strptime(tail, "%Y/%m/%d/%H-%M").replace(tzinfo=UTC)
    except ValueError:
        raise TiersError(f"{key!r} is not a hot-tier key (…/YYYY/MM/DD/HH-MM.parquet)") from None


def month_hot_prefix(config: ProviderConfig, month: str, environment: str) -> str:
    start = parse_month(month)
    return f"{config.hot_prefix(environment)}/{start:%Y/%m}/"


def month_warm_prefix(config: ProviderConfig, month: str, environment: str) -> str:
    start = parse_month(month)
    return f"{config.warm_prefix(environment)}/{start:%Y/%m}/"
