"""The keys of a preset file as a pydantic model (docs/silver.md lists them; a test keeps the two
in step). A module of its own so that pydantic (~70 ms to import, see docs/libraries.md) loads
only when a preset file is read, not for `data-platform silver --help`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from data_platform.silver.presets import DEFAULT_SNAPSHOT_COLUMNS


class PresetFile(BaseModel):
    """Shape and types only; what the values mean together is `validate_preset`'s job."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str | None = Field(None, description="the preset's name; default: the file's name")
    dataset: str | None = Field(
        None, description="the raw dataset folder (raw/<dataset>/...); default: name"
    )
    schema_: str = Field("public", alias="schema", description="Postgres schema of the table")
    table: str | None = Field(None, description="Postgres table; default: name")
    description: str | None = Field(None, description="free text, for people")
    file_format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="auto (by file name), csv or parquet"
    )
    ignore_extra_columns: bool = Field(
        False, description="true: file columns the table lacks are skipped, not refused"
    )
    snapshot_columns: list[str] = Field(
        list(DEFAULT_SNAPSHOT_COLUMNS),
        min_length=4,
        max_length=4,
        description="4 distinct columns for year, month, region, sigungu",
    )
    columns: dict[str, str] = Field(
        min_length=1, description="column name = Postgres type, in table order"
    )
