"""The compiler: a pure, deterministic function from a validated workflow to a plan."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.compiler import STEP_TASK, Plan, compile_plan
from orchestrator.graph import validate
from orchestrator.loader import workflow_from_data
from orchestrator.messages import IDX, PRI, RUN, step_template
from tests.unit.dags import PROPERTY, TASK, Dag, dags, is_topological


def plan_of(dag: Dag, **kwargs: Any) -> Plan:
    return compile_plan(validate(dag.workflow()), **kwargs)


@PROPERTY
@given(dags())
def test_upstreams_are_exactly_after_plus_map_source(dag: Dag) -> None:
    plan = plan_of(dag)
    assert set(plan.steps) == set(dag.names)
    for name, sp in plan.steps.items():
        assert sp.name == name
        assert len(sp.upstreams) == len(set(sp.upstreams)), f"{name}: repeated upstream"
        assert set(sp.upstreams) == dag.upstreams(name)
        assert sp.map_source == dag.maps.get(name)


@PROPERTY
@given(dags())
def test_downstreams_are_the_inverse_relation(dag: Dag) -> None:
    plan = plan_of(dag)
    for name, sp in plan.steps.items():
        assert len(sp.downstreams) == len(set(sp.downstreams))
        assert set(sp.downstreams) == {d for d, o in plan.steps.items() if name in o.upstreams}
        assert set(sp.downstreams) == dag.downstreams(name)


@PROPERTY
@given(dags())
def test_roots_finals_and_order(dag: Dag) -> None:
    plan = plan_of(dag)
    assert set(plan.roots) == {n for n in dag.names if not dag.upstreams(n)}
    assert set(plan.finals) == {n for n in dag.names if not dag.downstreams(n)}
    assert plan.roots, "a DAG has at least one root"
    assert plan.finals, "a DAG has at least one final step"
    for name in plan.roots:
        assert plan.steps[name].upstreams == ()
    for name in plan.finals:
        assert plan.steps[name].downstreams == ()
        assert plan.steps[name].final
    for name, sp in plan.steps.items():
        assert sp.final == (name in plan.finals)
    assert is_topological(plan.order, dag)


@PROPERTY
@given(dags())
def test_step_fields_come_from_the_spec(dag: Dag) -> None:
    plan = plan_of(dag, default_queue="dflt")
    mapped = set(dag.maps.values())
    for name, sp in plan.steps.items():
        assert sp.task == TASK
        assert sp.queue == dag.queues.get(name, "dflt")
        assert sp.mapped_over == (name in mapped)
        assert sp.trigger == "all_succeeded"
        assert sp.wait_for is None


@PROPERTY
@given(dags(), st.randoms(use_true_random=False))
def test_compile_is_deterministic(dag: Dag, rnd: Any) -> None:
    first = plan_of(dag)
    assert plan_of(dag) == first
    shuffled = list(dag.names)
    rnd.shuffle(shuffled)
    again = compile_plan(validate(dag.workflow(shuffled)))
    assert again == first
    assert again.order == first.order
    assert again.segments == first.segments


@PROPERTY
@given(dags())
def test_segments_partition_the_steps_into_maximal_chains(dag: Dag) -> None:
    plan = plan_of(dag)
    seen = [name for seg in plan.segments for name in seg.steps]
    assert sorted(seen) == sorted(dag.names), "every step in exactly one segment"
    for seg in plan.segments:
        assert seg.steps
        for a, b in zip(seg.steps, seg.steps[1:], strict=False):
            assert plan.steps[a].downstreams == (b,), f"{a} → {b} is not 1-out"
            assert plan.steps[b].upstreams == (a,), f"{a} → {b} is not 1-in"
        head, tail = plan.steps[seg.steps[0]], plan.steps[seg.steps[-1]]
        assert set(seg.joins) == set(head.upstreams)
        assert seg.kind == ("join" if len(head.upstreams) > 1 else "chain")
        assert seg.fans_out_to == (tail.downstreams if len(tail.downstreams) > 1 else ())
        # Maximal: the chain could not be extended at either end.
        if len(head.upstreams) == 1:
            assert len(plan.steps[head.upstreams[0]].downstreams) != 1
        if len(tail.downstreams) == 1:
            assert len(plan.steps[tail.downstreams[0]].upstreams) != 1


def _dispatched(plan: Plan, name: str, run_id: str) -> dict[str, Any]:
    """The Celery message the engine queues for one step of one run (its template filled)."""
    filled = step_template(plan, plan.steps[name]).replace(RUN, run_id).replace(IDX, "0")
    filled = filled.replace(PRI, "9")
    envelope = json.loads(filled)
    args = json.loads(envelope["body"])[0]
    return {"headers": envelope["headers"], "args": args, "properties": envelope["properties"]}


@PROPERTY
@given(dags(), st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True))
def test_messages_of_every_step(dag: Dag, run_id: str) -> None:
    plan = plan_of(dag, default_queue="dflt")
    assert set(plan.steps) == set(dag.names)
    ids = []
    for name in plan.steps:
        msg = _dispatched(plan, name, run_id)
        assert msg["headers"]["task"] == STEP_TASK == "orch.step"
        mapped = name in dag.maps
        assert msg["args"] == [run_id, "dag:1", name, 0 if mapped else None]
        assert msg["headers"]["id"] == f"{run_id}-{name}" + ("-0" if mapped else "")
        assert msg["properties"]["delivery_info"]["routing_key"] == dag.queues.get(name, "dflt")
        assert msg["headers"]["shadow"] == f"dag.{name}"
        ids.append(msg["headers"]["id"])
    assert len(set(ids)) == len(ids)


def test_default_queue_is_orch() -> None:
    wf = workflow_from_data(
        {
            "name": "q",
            "version": 2,
            "steps": {"a": {"task": TASK}, "b": {"task": TASK, "queue": "slow"}},
        }
    )
    plan = compile_plan(wf)
    assert _dispatched(plan, "a", "r1")["properties"]["delivery_info"]["routing_key"] == "orch"
    assert _dispatched(plan, "b", "r1")["properties"]["delivery_info"]["routing_key"] == "slow"
    assert _dispatched(plan, "a", "r1")["args"] == ["r1", "q:2", "a", None]


def test_task_ids_for_map_elements() -> None:
    wf = workflow_from_data(
        {"name": "m", "version": 1, "steps": {"a": {"task": TASK}, "b": {"task": TASK, "map": "a"}}}
    )
    plan = compile_plan(wf)
    assert plan.steps["b"].task_id("r") == "r-b"
    assert plan.steps["b"].task_id("r", 0) == "r-b-0"
    assert plan.steps["b"].task_id("r", 12) == "r-b-12"
    assert plan.steps["b"].upstreams == ("a",)
    assert plan.steps["a"].mapped_over and not plan.steps["b"].mapped_over


def test_non_series_parallel_graph() -> None:
    """a→c, a→d, b→d, b→e: no nesting of chains and chords expresses this exactly."""
    wf = workflow_from_data(
        {
            "name": "nsp",
            "version": 1,
            "steps": {
                "a": {"task": TASK},
                "b": {"task": TASK},
                "c": {"task": TASK, "after": ["a"]},
                "d": {"task": TASK, "after": ["a", "b"]},
                "e": {"task": TASK, "after": ["b"]},
            },
        }
    )
    plan = compile_plan(validate(wf))
    assert set(plan.steps["d"].upstreams) == {"a", "b"}
    assert set(plan.steps["c"].upstreams) == {"a"}
    assert set(plan.steps["e"].upstreams) == {"b"}
    assert set(plan.steps["a"].downstreams) == {"c", "d"}
    assert set(plan.steps["b"].downstreams) == {"d", "e"}
    assert set(plan.roots) == {"a", "b"}
    assert set(plan.finals) == {"c", "d", "e"}
    assert plan.order == ("a", "b", "c", "d", "e")
    by_head = {seg.steps[0]: seg for seg in plan.segments}
    assert set(by_head) == {"a", "b", "c", "d", "e"}
    assert by_head["d"].kind == "join"
    assert set(by_head["d"].joins) == {"a", "b"}
    assert set(by_head["a"].fans_out_to) == {"c", "d"}


def test_plan_metadata() -> None:
    wf = workflow_from_data({"name": "meta", "version": 7, "steps": {"a": {"task": TASK}}})
    plan = compile_plan(wf)
    assert plan.ref == "meta:7"
    assert plan.workflow == "meta"
    assert plan.version == 7
    assert plan.content_hash == wf.content_hash


# --- dependency limits and timeouts reach the plan -----------------------------


def test_dependency_limits_compile_into_the_step_record() -> None:
    from orchestrator.spec import Workflow

    workflow = Workflow.model_validate(
        {
            "name": "deps",
            "version": 1,
            "dependencies": {
                "llm": {
                    "rate": "60/m",
                    "concurrency": 4,
                    "retry_budget": {"ratio": 0.2, "min_per_s": 2},
                    "breaker": {"failure_rate": 0.5, "min_calls": 20, "open_for": "30s"},
                },
                "db": {"rate": "100/s", "burst": 5},
            },
            "steps": {
                "a": {"task": "m:f", "dependency": "llm", "retry": {"timeout": "2s"}},
                "b": {"task": "m:f", "dependency": "db", "after": ["a"]},
                "c": {"task": "m:f", "after": ["a"], "fallback": "m:g"},
            },
        }
    )
    plan = compile_plan(workflow)
    assert plan.steps["a"].dependency == {
        "name": "llm", "rate": 1.0, "burst": 1.0, "concurrency": 4,
        "budget_ratio": 0.2, "budget_min_per_s": 2.0,
        "failure_rate": 0.5, "min_calls": 20, "open_for": 30.0,
    }  # fmt: skip
    assert plan.steps["b"].dependency == {"name": "db", "rate": 100.0, "burst": 5.0}
    assert plan.steps["c"].dependency is None
    assert plan.steps["c"].fallback == "m:g"
    assert plan.steps["a"].timeout == 2.0
    assert plan.steps["b"].timeout is None
