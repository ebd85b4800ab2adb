"""The one formatter of configuration errors, on a small model of its own."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from data_platform.core.config_errors import SECRET, describe_validation_error


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    password: str = Field(json_schema_extra=SECRET)


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    tags: tuple[Annotated[str, StringConstraints(pattern=r"\S")], ...] = Field(
        min_length=1, description="a non-empty list of words", strict=False
    )
    logins: dict[str, Login] = Field(default_factory=dict)
    every: str = "1h"

    @field_validator("name")
    @classmethod
    def _no_slash(cls, name: str) -> str:
        if "/" in name:
            raise ValueError("must not hold '/'")
        return name

    @field_validator("every")
    @classmethod
    def _duration(cls, every: str) -> str:
        if not every.endswith("h"):
            raise ValueError(f"{every!r} is not a number of hours such as 2h")
        return every


class File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    jobs: list[Job]


def message(data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        File.model_validate(data)
    return describe_validation_error("jobs.toml", caught.value, File, data)


def test_a_list_emptied_by_bad_items_is_reported_by_its_items_only() -> None:
    assert message({"jobs": [{"name": "nightly", "tags": [" "]}]}) == (
        "jobs.toml: jobs[0] (nightly).tags[0]: ' ' is not allowed "
        "(expected: a non-empty list of words)"
    )


def test_secret_values_are_named_by_type_only() -> None:
    text = message(
        {"jobs": [{"name": "a", "tags": ["x"], "logins": {"db": {"password": ["hunter2"]}}}]}
    )
    assert text == (
        "jobs.toml: jobs[0] (a).logins.db.password: Input should be a valid string, not a list"
    )
    assert "hunter2" not in text


def test_unknown_keys_name_the_keys_of_their_own_level() -> None:
    assert message({"jobs": [{"name": "a", "tags": ["x"], "logins": {"db": {"pw": "x"}}}]}) == (
        "jobs.toml: jobs[0] (a).logins.db.password: missing; "
        "jobs[0] (a).logins.db.pw: unknown key (allowed: password)"
    )


def test_a_validators_message_gets_the_value_unless_it_quotes_it_already() -> None:
    assert message({"jobs": [{"name": "a/b", "tags": ["x"], "every": "soon"}]}) == (
        "jobs.toml: jobs[0] (a/b).name: must not hold '/', not 'a/b'; "
        "jobs[0] (a/b).every: 'soon' is not a number of hours such as 2h"
    )
