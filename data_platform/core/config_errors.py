"""pydantic's ValidationError as one line a user can act on: `file: key: problem (allowed: ...)`.

For every configuration file the platform reads (silver presets, parts supplier files, the
replication spec), so all of them say what is wrong the same way: the file, the key's path
(`tables[2] (orders).source.table`: a list item is named by its `name` key when it has one),
the problem with the value given, and what is allowed or expected (pydantic's own list for a
choice, the model's keys for an unknown one or a value that must be a mapping, else the field's
description).

A field marked `json_schema_extra=SECRET` (connection URLs, which hold passwords) never has its
value, or any value beneath it, echoed: only its type is named.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic.fields import FieldInfo
    from pydantic_core import ErrorDetails

SECRET: dict[str, Any] = {"secret": True}
_SHOWN_UP_TO = 60  # characters of a value's repr quoted in a message; longer ones by type only
_COUNTED = ("too_short", "too_long")  # pydantic's message already gives the length found
_SCALARS = (str, int, float)  # bool is an int

Location = Sequence[int | str]


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may use: each field's alias, else its name."""
    return [field.alias or name for name, field in model.model_fields.items()]


def location(loc: Location, data: Any = None) -> str:
    """`tables[2] (orders).source.table`; `data` (the file's parsed content) names list items."""
    text, value = "", data
    for part in loc:
        value = _child(value, part)
        if isinstance(part, int):
            named = value.get("name") if isinstance(value, Mapping) else None
            text += f"[{part}]" + (f" ({named})" if isinstance(named, str) and named else "")
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def validation_problems(exc: ValidationError, model: type[BaseModel], data: Any = None) -> str:
    """Every problem pydantic found, one per location, joined by `; ` on one line."""
    errors = exc.errors(include_url=False)
    beneath = {tuple(e["loc"][:-1]) for e in errors if e["loc"]}
    problems = [
        _problem(error, model, data)
        for error in errors
        # a list whose bad items were dropped is "too short after validation": say only why
        if not (error["type"] in _COUNTED and tuple(error["loc"]) in beneath)
    ]
    return "; ".join(dict.fromkeys(problems))


def describe_validation_error(
    origin: str, exc: ValidationError, model: type[BaseModel], data: Any = None
) -> str:
    """`origin: ` (a file name) and every problem pydantic found in it, on one line."""
    return f"{origin}: {validation_problems(exc, model, data)}"


def _problem(error: ErrorDetails, model: type[BaseModel], data: Any) -> str:
    loc, kind = tuple(error["loc"]), error["type"]
    if "[key]" in loc:  # a mapping's key (YAML allows numbers and lists as keys)
        cut = loc.index("[key]") - 1
        return f"{location(loc[:cut], data)}: key {loc[cut]!r} is not allowed: {error['msg']}"
    where = location(loc, data)
    field, target, secret = _walk(model, loc)
    if kind == "extra_forbidden":
        owner = _walk(model, loc[:-1])[1]
        allowed = ", ".join(model_keys(owner)) if owner else "none"
        return f"{where}: unknown key (allowed: {allowed})"
    if kind == "missing":
        return f"{where}: missing{_expected(field, target)}"
    shown = _shown(error["input"], secret)
    if kind == "value_error":  # our own validators say what is wrong, not always with what
        message = str(error["ctx"]["error"])
        quoted = isinstance(error["input"], _SCALARS) and shown == repr(error["input"])
        if quoted and shown not in message:
            message += f", not {shown}"
        return f"{where}: {message}"
    expected = (error.get("ctx") or {}).get("expected")
    if expected:  # a choice: pydantic lists what is allowed
        return f"{where}: {shown} is not allowed (allowed: {expected})"
    if kind == "string_pattern_mismatch":  # the pattern itself means little to a user
        return f"{where}: {shown} is not allowed{_expected(field, target)}"
    message = error["msg"].split(" or instance of ")[0]
    if kind not in _COUNTED:
        message += f", not {shown}"
    return f"{where}: {message}{_expected(field, target)}"


def _expected(field: FieldInfo | None, target: Any) -> str:
    if _is_model(target):
        return f" (expected: a mapping with the keys {', '.join(model_keys(target))})"
    if field is not None and field.description:
        return f" (expected: {field.description.removeprefix('must be ')})"
    return ""


def _shown(value: Any, secret: bool) -> str:
    text = repr(value)
    if secret or len(text) > _SHOWN_UP_TO:
        return f"a {type(value).__name__}"
    return text


def _walk(model: type[BaseModel], loc: Location) -> tuple[FieldInfo | None, Any, bool]:
    """Along `loc`: the last field passed (a list item's errors are its list's), the type the
    value there must have, and whether a secret field was passed."""
    annotation: Any = model
    field, secret = None, False
    for part in loc:
        current = _unwrap(annotation)
        if _is_model(current):
            field = next(
                (f for name, f in current.model_fields.items() if part in (name, f.alias)), None
            )
            if field is None:  # an unknown key
                return None, None, secret
            secret = secret or (field.json_schema_extra or {}).get("secret") is True
            annotation = field.annotation
        else:
            annotation = _item(current)
    return field, _unwrap(annotation), secret


def _unwrap(annotation: Any) -> Any:
    """`X` of `Annotated[X, ...]` and of `X | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _item(annotation: Any) -> Any:
    """The type of an item of a list, tuple or set, or of a mapping's value."""
    arguments = get_args(annotation)
    if not arguments:
        return None
    return arguments[-1] if issubclass(get_origin(annotation) or object, Mapping) else arguments[0]


def _child(value: Any, part: int | str) -> Any:
    if isinstance(part, int) and isinstance(value, list | tuple) and 0 <= part < len(value):
        return value[part]
    if isinstance(value, Mapping):
        return value.get(part)
    return None


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
