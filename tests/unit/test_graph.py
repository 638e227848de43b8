"""Graph validation: acceptance of DAGs, refusal of everything else with one-line errors."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.graph import downstream_map, final_steps, find_cycle, topological_order, validate
from orchestrator.loader import workflow_from_data
from orchestrator.spec import Workflow
from tests.unit.dags import PROPERTY, TASK, Dag, cyclic_dags, dags, is_topological, step_names


def wf(steps: dict[str, dict[str, Any]], **top: Any) -> Workflow:
    return workflow_from_data({"name": "g", "version": 1, "steps": steps, **top})


def t(**fields: Any) -> dict[str, Any]:
    return {"task": TASK, **fields}


def refused(workflow: Workflow, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as info:
        validate(workflow, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- random DAGs -------------------------------------------------------------


@PROPERTY
@given(dags())
def test_random_dags_validate(dag: Dag) -> None:
    workflow = dag.workflow()
    assert validate(workflow) is workflow
    assert find_cycle(workflow) == []


@PROPERTY
@given(dags())
def test_topological_order_puts_every_upstream_first(dag: Dag) -> None:
    order = topological_order(dag.workflow())
    assert len(order) == len(set(order)) == len(dag.names)
    assert is_topological(order, dag)


@PROPERTY
@given(dags())
def test_topological_order_breaks_ties_by_name(dag: Dag) -> None:
    """The order is the lexicographically smallest topological order, so it is stable."""
    order = topological_order(dag.workflow())
    placed: set[str] = set()
    for name in order:
        ready = [n for n in dag.names if n not in placed and dag.upstreams(n) <= placed]
        assert name == min(ready)
        placed.add(name)


@PROPERTY
@given(dags(), st.randoms(use_true_random=False))
def test_topological_order_ignores_declaration_order(dag: Dag, rnd: Any) -> None:
    shuffled = list(dag.names)
    rnd.shuffle(shuffled)
    assert topological_order(dag.workflow(shuffled)) == topological_order(dag.workflow())


@PROPERTY
@given(dags())
def test_final_steps_are_exactly_the_steps_without_dependants(dag: Dag) -> None:
    expected = sorted(n for n in dag.names if not dag.downstreams(n))
    assert final_steps(dag.workflow()) == expected


@PROPERTY
@given(dags())
def test_downstream_map_is_the_inverse_of_upstreams(dag: Dag) -> None:
    down = downstream_map(dag.workflow())
    assert set(down) == set(dag.names)
    for name, targets in down.items():
        assert targets == sorted(dag.downstreams(name))


# --- cycles ------------------------------------------------------------------

_CYCLE = re.compile(r"cycle (\S+(?: → \S+)+)$")


def _cycle_in(message: str) -> list[str]:
    match = _CYCLE.search(message)
    assert match, message
    return match.group(1).split(" → ")


@PROPERTY
@given(cyclic_dags())
def test_cycles_are_refused_naming_a_real_cycle(dag: Dag) -> None:
    workflow = dag.workflow()
    message = refused(workflow)
    cycle = _cycle_in(message)
    assert len(cycle) >= 3
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, "a cycle visits each step once"
    edges = dag.edges()
    for a, b in itertools.pairwise(cycle):
        assert (a, b) in edges, f"{a} → {b} is not an edge of the graph ({message})"
    assert message.startswith(f"step {cycle[0]!r}, field ")
    assert re.search(r"field '(after|map)'", message)
    with pytest.raises(SpecError):
        topological_order(workflow)
    found = find_cycle(workflow)
    assert found[0] == found[-1]
    assert all(edge in edges for edge in itertools.pairwise(found))


def test_cycle_message_shape() -> None:
    workflow = wf({"a": t(after=["c"]), "b": t(after=["a"]), "c": t(after=["b"])})
    message = refused(workflow)
    cycle = _cycle_in(message)
    assert set(cycle) == {"a", "b", "c"}
    assert re.fullmatch(r"step '(a|b|c)', field 'after': cycle \w → \w → \w → \w", message)


def test_cycle_closed_by_a_map_edge_names_the_map_field() -> None:
    """Step b has no 'after' at all: its only edge into the cycle is 'map: a'."""
    workflow = wf({"a": t(after=["b"]), "b": t(map="a")})
    message = refused(workflow)
    cycle = _cycle_in(message)
    head = cycle[0]
    edge_field = "after" if cycle[-2] in workflow.steps[head].after else "map"
    assert message.startswith(f"step {head!r}, field {edge_field!r}"), message


def test_long_cycle_is_a_spec_error() -> None:
    """A cycle through 1,500 steps is refused like a short one (no RecursionError)."""
    n = 1500
    steps = {f"s{i}": t(after=[f"s{(i - 1) % n}"]) for i in range(n)}
    try:
        validate(wf(steps))
    except SpecError as exc:
        message = str(exc)
    except RecursionError:
        pytest.fail("validate() raised RecursionError instead of a one-line SpecError")
    else:
        pytest.fail("a cyclic workflow was accepted")
    assert len(_cycle_in(message)) == n + 1


def test_long_chain_validates() -> None:
    n = 1500
    steps = {f"s{i}": t(after=[f"s{i - 1}"] if i else []) for i in range(n)}
    order = topological_order(wf(steps))
    assert order == [f"s{i}" for i in range(n)]


# --- reference errors: each names the step and the field ----------------------


@pytest.mark.parametrize(
    ("steps", "step", "field", "fragment"),
    [
        ({"a": t(), "b": t(after=["zz"])}, "b", "after", "unknown step 'zz'"),
        ({"a": t(), "b": t(map="zz")}, "b", "map", "unknown step 'zz'"),
        ({"a": t(), "b": t(after=["b"])}, "b", "after", "itself"),
        ({"a": t(), "b": t(map="b")}, "b", "map", "itself"),
        ({"a": t(), "b": t(after=["a", "a"])}, "b", "after", "'a' is listed twice"),
        ({"a": t(), "b": t(dependency="llm")}, "b", "dependency", "unknown dependency 'llm'"),
    ],
)
def test_reference_errors_name_step_and_field(
    steps: dict[str, Any], step: str, field: str, fragment: str
) -> None:
    message = refused(wf(steps))
    assert message.startswith(f"step {step!r}, field {field!r}: ")
    assert fragment in message


def test_declared_dependency_is_accepted() -> None:
    workflow = wf({"a": t(dependency="llm")}, dependencies={"llm": {"rate": "60/m"}})
    assert validate(workflow) is workflow


def test_ctx_is_not_a_step_name() -> None:
    message = refused(wf({"ctx": t(), "b": t(after=["ctx"])}))
    assert message.startswith("step 'ctx'")
    assert "reserved" in message


@PROPERTY
@given(dags(), step_names)
def test_unknown_after_target_anywhere_is_refused(dag: Dag, ghost: str) -> None:
    if ghost in dag.names:
        ghost = ghost + "_ghost"
    victim = dag.names[-1]
    data = dag.data()
    data["steps"][victim]["after"].append(ghost)
    message = refused(workflow_from_data(data))
    assert f"step {victim!r}, field 'after'" in message
    assert repr(ghost) in message


# --- backoff against the broker visibility timeout ---------------------------


@pytest.mark.parametrize("visibility", [30.0, 10.0])
def test_step_backoff_cap_must_be_below_visibility_timeout(visibility: float) -> None:
    workflow = wf({"a": t(), "b": t(retry={"initial": "1s", "max": "30s"})}, retry={"max": "5s"})
    message = refused(workflow, visibility_timeout=visibility)
    assert message.startswith("step 'b', field 'retry.max': ")
    assert "30s" in message
    assert f"{visibility:g}s" in message


def test_backoff_cap_below_visibility_timeout_is_accepted() -> None:
    workflow = wf({"a": t(retry={"initial": "1s", "max": "30s"})})
    assert validate(workflow, visibility_timeout=30.001) is workflow
    assert validate(workflow) is workflow


def test_workflow_default_cap_is_checked_too() -> None:
    workflow = wf({"a": t()}, retry={"max": "2h"})
    message = refused(workflow, visibility_timeout=3600)
    assert "'retry.max'" in message
    assert "step 'a'" in message


# --- import checks (opt-in) --------------------------------------------------


def test_import_check_names_step_and_field() -> None:
    workflow = wf({"a": {"task": "nonexistent.module:fn"}})
    assert validate(workflow) is workflow  # structural checks import nothing
    message = refused(workflow, import_tasks=True)
    assert message.startswith("step 'a', field 'task': ")
    assert "nonexistent.module:fn" in message


@pytest.mark.parametrize("field", ["fallback", "when", "compensate"])
def test_import_check_covers_other_task_fields(field: str) -> None:
    workflow = wf({"a": {"task": "tests.unit.stepfns:noop", field: "tests.unit.stepfns:missing"}})
    message = refused(workflow, import_tasks=True)
    assert message.startswith(f"step 'a', field {field!r}: ")


def test_import_check_refuses_a_non_callable() -> None:
    message = refused(wf({"a": {"task": "tests.unit.stepfns:NOT_CALLABLE"}}), import_tasks=True)
    assert message.startswith("step 'a', field 'task': ")
    assert "not callable" in message


def test_compensate_none_is_not_imported() -> None:
    workflow = wf({"a": {"task": "tests.unit.stepfns:noop", "compensate": "none"}})
    assert validate(workflow, import_tasks=True) is workflow


def test_fill_check_parameter_naming_a_step_outside_after() -> None:
    workflow = wf(
        {
            "fetch": {"task": "tests.unit.stepfns:fetch"},
            "classify": {"task": "tests.unit.stepfns:classify"},
        },
        input={"url": "str", "threshold": "int"},
    )
    message = refused(workflow, import_tasks=True)
    assert message.startswith("step 'classify', field 'task': ")
    assert "'fetch'" in message


def test_fill_check_parameter_no_input_can_fill() -> None:
    workflow = wf(
        {
            "fetch": {"task": "tests.unit.stepfns:fetch"},
            "classify": {"task": "tests.unit.stepfns:classify", "after": ["fetch"]},
        },
        input={"url": "str"},
    )
    message = refused(workflow, import_tasks=True)
    assert message.startswith("step 'classify', field 'task': ")
    assert "'threshold'" in message


def test_fill_check_accepts_a_fillable_graph() -> None:
    workflow = wf(
        {
            "fetch": {"task": "tests.unit.stepfns:fetch"},
            "classify": {"task": "tests.unit.stepfns:classify", "after": ["fetch"]},
            "chunk": {"task": "tests.unit.stepfns:chunk", "map": "fetch"},
        },
        input={"url": "str", "threshold": "int"},
    )
    assert validate(workflow, import_tasks=True) is workflow


# --- garbage never crashes validation ----------------------------------------

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

plausible_name = st.sampled_from(["a", "b", "c", "ctx", "fetch", "1x", "", "a b"])
plausible_value = st.one_of(
    json_like,
    st.sampled_from(
        ["m:f", "tests.unit.stepfns:noop", "10s", "500ms", "1d", "-1s", "60/m", "0/s", "x"]
    ),
    st.lists(plausible_name, max_size=3),
    plausible_name,
    st.fixed_dictionaries(
        {},
        optional={
            "max_attempts": st.integers(-2, 200),
            "initial": st.sampled_from(["1s", 5, -1, "2h", None]),
            "max": st.sampled_from(["1s", 5, 0, "2h", None]),
            "jitter": st.sampled_from(["full", "equal", "none", "bogus"]),
            "multiplier": st.floats(0, 20),
        },
    ),
)
step_fields = st.sampled_from(
    [
        "task",
        "after",
        "map",
        "queue",
        "dependency",
        "fallback",
        "wait_for",
        "when",
        "timeout",
        "on_timeout",
        "trigger",
        "compensate",
        "effects",
        "retry",
        "bogus",
    ]
)
garbage_step = st.one_of(json_like, st.dictionaries(step_fields, plausible_value, max_size=5))
garbage_workflow = st.fixed_dictionaries(
    {
        "name": st.one_of(json_like, st.sampled_from(["triage", "Bad Name", "x" * 101])),
        "version": st.one_of(json_like, st.integers(-1, 3)),
        "steps": st.one_of(json_like, st.dictionaries(plausible_name, garbage_step, max_size=5)),
    },
    optional={
        "retry": plausible_value,
        "input": st.one_of(json_like, st.dictionaries(plausible_name, st.just("str"))),
        "dependencies": st.one_of(
            json_like,
            st.dictionaries(
                st.sampled_from(["llm", "db"]),
                st.fixed_dictionaries({}, optional={"rate": plausible_value}),
            ),
        ),
    },
)


def _never_crashes(data: object, visibility: float | None) -> None:
    try:
        workflow = workflow_from_data(data)
        validate(workflow, visibility_timeout=visibility)
    except SpecError as exc:
        assert "\n" not in str(exc)
        assert str(exc)


@PROPERTY
@given(json_like)
def test_validation_never_crashes_on_json_garbage(data: object) -> None:
    _never_crashes(data, None)


@PROPERTY
@given(garbage_workflow, st.one_of(st.none(), st.floats(0.5, 7200)))
def test_validation_never_crashes_on_workflow_shaped_garbage(
    data: dict[str, Any], visibility: float | None
) -> None:
    _never_crashes(data, visibility)


# --- field combinations ---------------------------------------------------------


def test_an_effectful_step_needs_a_compensation_or_says_none() -> None:
    message = refused(wf({"a": t(effects=True)}))
    assert message == (
        "step 'a', field 'compensate': a step with effects needs a compensation; "
        "say `compensate: none` if it needs none"
    )
    for compensate in ("none", "m:undo"):
        ok = wf({"a": t(effects=True, compensate=compensate)})
        assert validate(ok) is ok


def test_compensate_must_be_a_task_path_or_none() -> None:
    from orchestrator.loader import workflow_from_data

    with pytest.raises(SpecError, match="step 'a', field 'compensate'"):
        workflow_from_data({"name": "x", "version": 1, "steps": {"a": t(compensate="undo it")}})


def test_wait_timeouts_belong_to_wait_for_steps() -> None:
    message = refused(wf({"a": t(timeout="1d")}))
    assert message == (
        "step 'a', field 'timeout': "
        "only a wait_for step waits; a task's time limit is retry.timeout"
    )
    assert "field 'on_timeout'" in refused(wf({"a": t(on_timeout="skip")}))
    ok = wf({"a": t(), "b": {"wait_for": "approval", "after": ["a"], "timeout": "1d"}})
    assert validate(ok) is ok


def test_a_map_step_cannot_have_a_predicate() -> None:
    workflow = wf({"a": t(), "b": {"task": "m:f", "map": "a", "when": "m:p"}})
    assert refused(workflow) == "step 'b', field 'when': a map step cannot have a `when` predicate"


def test_cancel_grace_belongs_to_steps_that_run_a_task() -> None:
    message = refused(wf({"a": t(), "b": {"wait_for": "go", "after": ["a"], "cancel_grace": 1}}))
    assert message == (
        "step 'b', field 'cancel_grace': a wait_for step runs nothing that could be interrupted"
    )
    graced = wf({"a": t(), "b": t(after=["a"], cancel_grace="500ms")}, cancel_grace="2m")
    assert validate(graced) is graced
    assert (graced.grace_for("a"), graced.grace_for("b")) == (120.0, 0.5)
    assert wf({"a": t()}).grace_for("a") is None
