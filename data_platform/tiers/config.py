"""Providers and key layout: which columns identify a row, which carry values, where files live.

`environment` is always an argument ("test" puts every key under `test/`); nothing here reads the
process environment, so importing the module never fixes a configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

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


@dataclass(frozen=True)
class ProviderConfig:
    """One provider's change-log schema. pk columns default to String, value columns to Float64."""

    name: str
    pk_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    dtypes: Mapping[str, pl.DataType] = field(default_factory=dict)
    score_column: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pk_columns", tuple(self.pk_columns))
        object.__setattr__(self, "value_columns", tuple(self.value_columns))
        if not self.name or "/" in self.name:
            raise TiersError(f"provider name {self.name!r} must be non-empty without '/'")
        if not self.pk_columns or not self.value_columns:
            raise TiersError(f"provider {self.name!r} needs pk_columns and value_columns")
        names = [*self.pk_columns, *self.value_columns]
        if len(set(names)) != len(names) or {CEASED, TIME} & set(names):
            raise TiersError(
                f"provider {self.name!r}: columns must be distinct and not {CEASED!r}/{TIME!r}"
            )

    @property
    def schema_dtypes(self) -> dict[str, pl.DataType]:
        """Every column of a hot or warm file, in canonical order, with its polars dtype."""
        schema: dict[str, pl.DataType] = {}
        for column in self.pk_columns:
            schema[column] = self.dtypes.get(column, pl.String())
        for column in self.value_columns:
            schema[column] = self.dtypes.get(column, pl.Float64())
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
        "aws", ("InstanceType", "Region", "AZ"), ("SPS",), {"SPS": pl.Int32()}, "SPS"
    ),
    "azure": ProviderConfig(
        "azure", ("InstanceType", "Region", "AvailabilityZone"), ("Score",), score_column="Score"
    ),
    "gcp": ProviderConfig("gcp", ("InstanceType", "Region"), ("Score",), score_column="Score"),
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


def known_providers() -> list[str]:
    return sorted(_PROVIDERS)


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
