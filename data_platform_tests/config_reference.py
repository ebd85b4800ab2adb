"""The keys of a configuration model as its docs reference writes them, for the tests that keep
docs/parts.md, docs/replication.md and docs/silver.md in step with the models."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def model_reference(annotation: Any, owner: str = "") -> dict[str, FieldInfo]:
    """Every key a file may use, in model order, with its field: nested ones as
    `tables[].source.table` and `connections.<name>.url`; `owner` is the key holding this type."""
    keys: dict[str, FieldInfo] = {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            key = f"{owner}.{info.alias or name}" if owner else info.alias or name
            keys[key] = info
            keys.update(model_reference(info.annotation, key))
    elif get_origin(annotation) is dict:
        keys.update(model_reference(get_args(annotation)[1], owner + ".<name>"))
    elif get_origin(annotation) in (list, tuple):
        keys.update(model_reference(get_args(annotation)[0], owner + "[]"))
    else:  # Optional, Annotated
        for argument in get_args(annotation):
            keys.update(model_reference(argument, owner))
    return keys
