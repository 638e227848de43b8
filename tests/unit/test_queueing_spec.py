"""The queueing fields of a spec, and how a submit's priority and fairness key are chosen."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.loader import workflow_from_data
from orchestrator.queueing import run_fairness_key, run_priority
from orchestrator.spec import json_schema

STEPS = {"a": {"task": "m:f"}}


def wf(**fields: Any) -> Any:
    return workflow_from_data({"name": "q", "version": 1, "steps": STEPS, **fields})


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"priority": 10}, "field 'priority'"),
        ({"priority": "high"}, "field 'priority'"),
        ({"steps": {"a": {"task": "m:f", "priority": -1}}}, "step 'a', field 'priority'"),
        ({"fairness": {"key": "customer"}}, "field 'fairness.key'"),
        ({"fairness": {"key": "input.c", "weights": {"gold": 0}}}, "fairness.weights.gold"),
        ({"fairness": {"key": "input.c", "max_queued": 0}}, "fairness.max_queued"),
        ({"max_queued": 0}, "field 'max_queued'"),
        ({"fairness": {"key": "input.c", "fair": True}}, "fairness.fair"),
    ],
)
def test_bad_queueing_fields_are_one_line_naming_the_field(
    fields: dict[str, Any], where: str
) -> None:
    with pytest.raises(SpecError) as err:
        wf(**fields)
    assert where in str(err.value)
    assert "\n" not in str(err.value)


def test_a_workflow_without_the_new_fields_keeps_its_content_hash() -> None:
    plain = wf()
    assert "priority" not in plain.canonical_json()
    assert "fairness" not in plain.canonical_json()
    assert wf(priority=3).content_hash != plain.content_hash


def test_the_json_schema_covers_the_queueing_fields() -> None:
    schema = json_schema()
    props = schema["properties"]
    assert {"priority", "fairness", "max_queued"} <= set(props)
    assert "priority" in schema["$defs"]["StepSpec"]["properties"]
    assert "weights" in schema["$defs"]["Fairness"]["properties"]


def test_a_runs_priority_is_the_given_one_else_the_specs_else_zero() -> None:
    assert run_priority(wf(), None) == 0
    assert run_priority(wf(priority=4), None) == 4
    assert run_priority(wf(priority=4), 9) == 9
    assert run_priority(wf(priority=4), 0) == 0


@given(st.one_of(st.integers().filter(lambda n: not 0 <= n <= 9), st.booleans(), st.text()))
def test_a_priority_outside_0_to_9_is_refused(bad: Any) -> None:
    with pytest.raises(OrchestratorError, match="priority must be an integer from 0 to 9"):
        run_priority(wf(), bad)


def test_the_fairness_key_comes_from_the_input_unless_given() -> None:
    keyed = wf(fairness={"key": "input.customer"})
    assert run_fairness_key(keyed, {"customer": "acme"}, None) == "acme"
    assert run_fairness_key(keyed, {"customer": 42}, None) == "42"
    assert run_fairness_key(keyed, {"other": 1}, None) is None
    assert run_fairness_key(keyed, {"customer": "acme"}, "given") == "given"
    assert run_fairness_key(wf(), {"customer": "acme"}, None) is None
    with pytest.raises(OrchestratorError, match="fairness key"):
        run_fairness_key(wf(), {}, "")
