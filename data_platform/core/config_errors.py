"""pydantic's ValidationError as one line a user can act on: `file: key: problem (allowed: ...)`.

For every configuration file the platform reads (silver presets, ...), so all of them say what
is wrong the same way: the file, the key's dotted path, the problem, what is allowed or expected
(pydantic's own list for a choice, the model's keys for an unknown one, else the field's
description).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic_core import ErrorDetails


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may use: each field's alias, else its name."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _field(model: type[BaseModel], key: Any) -> Any:
    return next(
        (f for name, f in model.model_fields.items() if key in (name, f.alias)),
        None,
    )


def _problem(error: ErrorDetails, model: type[BaseModel]) -> str:
    location = error["loc"]
    key = ".".join(str(part) for part in location) or "(top level)"
    expected = (error.get("ctx") or {}).get("expected")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (allowed: {', '.join(model_keys(model))})"
    if expected:
        return f"{key}: {error['input']!r} is not allowed (allowed: {expected})"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] != "missing" and isinstance(error["input"], str | int | float | bool):
        message += f", not {error['input']!r}"
    field = _field(model, location[0]) if len(location) == 1 else None
    if field is not None and field.description:
        message += f" (expected: {field.description})"
    return f"{key}: {message}"


def describe_validation_error(origin: str, exc: ValidationError, model: type[BaseModel]) -> str:
    """Every problem pydantic found in `origin` (a file name), on one line joined by `; `."""
    return f"{origin}: " + "; ".join(_problem(e, model) for e in exc.errors(include_url=False))
