"""The declared run input (``input: {x: int}``), checked when a run is submitted.

A workflow that declares its input used to accept any JSON object and fail
later, on a worker, with the run already started. The declaration is now a
contract: ``Client.submit`` (and so ``orch submit``) refuses an input that
lacks a required field or gives one the wrong type, with one line naming the
field, before anything is stored.

Type names, as the README's spec reference lists them::

    str  int  float  bool  list  dict  any      JSON types (float accepts an integer)
    list[T]   dict[T]  (or dict[str, T])          a list of T; an object whose values are T
    T?   (or  T | None)                          optional: may be missing or null

Values must already have the declared JSON type: ``"7"`` is not an ``int``
(the check is pydantic's strict mode). Fields the declaration does not name
are allowed and passed on as they are. The checker is built with pydantic
from the names, once per workflow version.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from orchestrator.errors import SpecError

_BASE: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list[Any],
    "dict": dict[str, Any],
    "any": Any,
}
_GENERIC = re.compile(r"^(list|dict)\[(.+)\]$")
TYPE_NAMES = "str, int, float, bool, list, dict, any, list[T], dict[T], T? (or T | None)"


def parse_type(text: str) -> tuple[Any, bool]:
    """(annotation, optional) for one declared type name; ValueError if it is not one."""
    spelled = text.strip()
    optional = False
    if spelled.endswith("?"):
        spelled, optional = spelled[:-1].strip(), True
    elif spelled.replace(" ", "").endswith("|None"):
        spelled, optional = spelled[: spelled.rindex("|")].strip(), True
    return _annotation(spelled, text), optional


def _annotation(spelled: str, original: str) -> Any:
    if spelled in _BASE:
        return _BASE[spelled]
    match = _GENERIC.match(spelled)
    if match is None:
        raise ValueError(f"unknown type {original!r}; use one of {TYPE_NAMES}")
    kind, argument = match.groups()
    if kind == "dict" and argument.replace(" ", "").startswith("str,"):
        argument = argument.split(",", 1)[1]  # dict[str, T] says the same as dict[T]
    inner, optional = parse_type(argument)
    item = Optional[inner] if optional else inner  # noqa: UP045 - built at run time
    return list[item] if kind == "list" else dict[str, item]  # type: ignore[valid-type]


def check_declaration(fields: dict[str, str]) -> None:
    """Raise a SpecError naming the first field whose type name is not one of ours."""
    for name, spelled in fields.items():
        try:
            parse_type(spelled)
        except ValueError as exc:
            raise SpecError(str(exc), where=f"field 'input.{name}'") from None


@lru_cache(maxsize=256)
def _model(declared: tuple[tuple[str, str], ...]) -> type[BaseModel]:
    definitions: dict[str, Any] = {}
    for name, spelled in declared:
        annotation, optional = parse_type(spelled)
        definitions[name] = (Optional[annotation], None) if optional else (annotation, ...)  # noqa: UP045
    config = ConfigDict(strict=True, extra="allow")
    return create_model("RunInput", __config__=config, **definitions)


def check_input(fields: dict[str, str], value: dict[str, Any], *, workflow: str) -> None:
    """Refuse an input that does not fit the declaration, naming the field."""
    model = _model(tuple(fields.items()))
    try:
        model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        field = loc[0] if loc else "?"
        declared = fields.get(field, "?")
        inner = f" at {'.'.join(loc[1:])}" if len(loc) > 1 else ""
        problem = " is missing" if first["type"] == "missing" else f": {first['msg']}{inner}"
        raise SpecError(
            f"field {field!r}{problem} (declared `{field}: {declared}` by {workflow})",
            where="run input",
        ) from None
