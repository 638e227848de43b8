"""The declared run input: type names, and the check a submit makes against them."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Flow, SpecError
from orchestrator.inputs import check_declaration, check_input, parse_type

DECLARED = {"x": "int", "tag": "str?", "scores": "list[float]", "meta": "dict[str, int | None]?"}


def refused(value: dict[str, Any], fields: dict[str, str] = DECLARED) -> str:
    with pytest.raises(SpecError) as info:
        check_input(fields, value, workflow="wf:1")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("value", "needles"),
    [
        ({"scores": []}, ["field 'x' is missing", "`x: int`", "wf:1"]),
        ({"x": "abc", "scores": []}, ["field 'x'", "valid integer"]),
        ({"x": "7", "scores": []}, ["field 'x'", "valid integer"]),  # no coercion: JSON types
        ({"x": True, "scores": []}, ["field 'x'"]),
        ({"x": 1}, ["field 'scores' is missing"]),
        ({"x": 1, "scores": [1.5, "a"]}, ["field 'scores'", "at 1"]),
        ({"x": 1, "scores": [], "tag": 3}, ["field 'tag'", "valid string"]),
        ({"x": 1, "scores": [], "meta": {"a": "b"}}, ["field 'meta'", "at a"]),
    ],
)
def test_a_missing_or_ill_typed_field_is_named(value: dict[str, Any], needles: list[str]) -> None:
    message = refused(value)
    assert message.startswith("run input: ")
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    "value",
    [
        {"x": 1, "scores": []},
        {"x": 1, "scores": [1, 2.5], "tag": None, "meta": {"a": None, "b": 2}},
        {"x": -3, "scores": [0.0], "tag": "t", "undeclared": {"kept": True}},
    ],
)
def test_a_fitting_input_passes(value: dict[str, Any]) -> None:
    check_input(DECLARED, value, workflow="wf:1")


def test_the_type_names() -> None:
    assert parse_type("int") == (int, False)
    assert parse_type("str?") == (str, True)
    assert parse_type("float | None") == (float, True)
    assert parse_type("list[str]")[0] == list[str]
    assert parse_type("dict[int]")[0] == dict[str, int]
    assert parse_type("dict[str, bool]")[0] == dict[str, bool]
    for name in ("any", "list", "dict", "bool"):
        parse_type(name)


@pytest.mark.parametrize("bad", ["integer", "list[nope]", "Document", "int??", ""])
def test_an_unknown_type_name_is_refused_at_validation(bad: str) -> None:
    with pytest.raises(SpecError, match=r"field 'input\.url': unknown type"):
        check_declaration({"url": bad})
    with pytest.raises(SpecError, match=r"input\.url"):
        Flow("t", 1, input={"url": bad}).step("a", "tests.unit.stepfns:fetch").build()
