"""Child workflow specs: the step kind, its checks, cycles and version resolution (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Flow
from orchestrator.children import check_cycles, child_run_id, resolve_children
from orchestrator.compiler import compile_plan
from orchestrator.errors import SpecError
from orchestrator.loader import load_family
from orchestrator.spec import Workflow, json_schema
from orchestrator.store.records import meta, step_record

TASK = "tests.unit.stepfns:fetch"


def test_a_step_is_a_task_a_wait_or_a_child_workflow_and_only_one() -> None:
    with pytest.raises(
        SpecError, match="exactly one of 'task', 'wait_for', 'workflow', 'sleep', 'until'"
    ):
        Flow("p", 1).step("s", TASK, workflow="c").build()
    wf = Flow("p", 1).step("s", workflow="c:2").build()
    assert wf.steps["s"].workflow == "c:2"


@pytest.mark.parametrize("ref", ["C", "c:0", "c:x", ":1", "c:1:2"])
def test_a_child_reference_is_a_name_and_an_optional_version(ref: str) -> None:
    with pytest.raises(SpecError, match="workflow"):
        Flow("p", 1).step("s", workflow=ref).build()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"fallback": TASK}, "fallback"),
        ({"compensate": TASK}, "compensate"),
        ({"cancel_grace": 1}, "cancel_grace"),
    ],
)
def test_a_child_workflow_step_runs_no_code_of_its_own(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError, match=f"step 's', field '{field}'"):
        Flow("p", 1).step("s", workflow="c", **fields).build()


def test_max_depth_belongs_to_a_child_workflow_step() -> None:
    with pytest.raises(SpecError, match="step 's', field 'max_depth'"):
        Flow("p", 1).step("s", TASK, max_depth=2).build()


def test_a_workflow_that_starts_itself_needs_a_max_depth() -> None:
    with pytest.raises(SpecError) as err:
        Flow("p", 1).step("s", workflow="p").build()
    assert "cycle through child workflows p → p" in str(err.value)
    assert "\n" not in str(err.value)
    bounded = Flow("p", 1).step("s", workflow="p", max_depth=3).build()
    plan = compile_plan(bounded)
    assert plan.steps["s"].child == "p:1"  # itself, this very version
    assert step_record(plan, "s")["max_depth"] == 3


def _wf(name: str, child: str | None = None, **fields: object) -> Workflow:
    flow = Flow(name, 1).step("a", TASK)
    if child is not None:
        flow = flow.step("b", workflow=child, after=["a"], **fields)
    return flow.build()


def test_a_cycle_through_other_workflows_is_refused_unless_bounded() -> None:
    with pytest.raises(SpecError, match="cycle through child workflows a → b → a"):
        check_cycles({"a": _wf("a", "b"), "b": _wf("b", "a")})
    check_cycles({"a": _wf("a", "b"), "b": _wf("b", "a", max_depth=4)})
    check_cycles({"a": _wf("a", "b"), "b": _wf("b", "c")})  # c is a leaf


def test_children_resolve_to_registered_versions_at_registration() -> None:
    registered = {"c": [1, 2], "d": [1]}
    specs = {("c", 2): _wf("c"), ("c", 1): _wf("c"), ("d", 1): _wf("d", "c")}
    parent = Flow("p", 1).step("x", workflow="c").step("y", workflow="d:1").build()
    found = resolve_children(parent, lambda n: registered.get(n, []), lambda n, v: specs[(n, v)])
    assert found == {"x": "c:2", "y": "d:1"}
    plan = compile_plan(parent, children=found)
    assert meta(plan)["children"] == ["x", "y"]
    assert step_record(plan, "x")["child"] == "c:2"
    assert step_record(plan, "x")["compensable"] is True  # undone as a whole
    missing = Flow("p", 1).step("x", workflow="c:3").build()
    with pytest.raises(SpecError, match="version 3 of 'c' is not registered"):
        resolve_children(missing, lambda n: registered.get(n, []), lambda n, v: specs[(n, v)])


def test_the_child_id_is_fixed_by_run_step_element_and_attempt() -> None:
    first = child_run_id("r1", "s", None, 1)
    assert first == child_run_id("r1", "s", None, 1)
    assert len({first, child_run_id("r1", "s", None, 2), child_run_id("r1", "s", 0, 1)}) == 3
    assert len(first) == 16 and int(first, 16) >= 0


def test_sibling_files_make_a_family_children_first(tmp_path: Path) -> None:
    (tmp_path / "leaf.yaml").write_text(f"name: leaf\nversion: 1\nsteps:\n  a: {{task: {TASK}}}\n")
    (tmp_path / "mid.yaml").write_text("name: mid\nversion: 1\nsteps:\n  b: {workflow: leaf}\n")
    top = tmp_path / "top.yaml"
    top.write_text("name: top\nversion: 1\nsteps:\n  c: {workflow: mid}\n  d: {workflow: other}\n")
    assert list(load_family(top)) == ["leaf", "mid", "top"]
    (tmp_path / "leaf.yaml").write_text("name: leaf\nversion: 1\nsteps:\n  a: {workflow: top}\n")
    with pytest.raises(SpecError, match="cycle through child workflows"):
        load_family(top)


def test_the_json_schema_covers_the_child_workflow_fields() -> None:
    step = json_schema()["$defs"]["StepSpec"]["properties"]
    assert "workflow" in step and "max_depth" in step
