"""Conditional branches: `when` predicates, skip propagation, triggers, coverage."""

from __future__ import annotations

import pytest

from orchestrator import Client, Flow, Workflow
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

B = "tests.steps.basic"


def branchy(name: str) -> Workflow:
    return (
        Flow(name, 1)
        .step("emit", f"{B}:emit")
        .step("big", f"{B}:add_one", after=["emit"], when=f"{B}:is_big")
        .step("after_big", f"{B}:add_one", after=["big"])
        .step("tolerant", f"{B}:total", after=["big", "emit"], trigger="none_failed")
        .step("anyone", f"{B}:total", after=["big", "after_big"], trigger="any_succeeded")
        .step("either", f"{B}:total", after=["big", "emit"], trigger="any_succeeded")
        .build()
    )


def states(doc: dict[str, object]) -> dict[str, str]:
    return {name: s["state"] for name, s in doc["steps"].items()}  # type: ignore[attr-defined]


def test_false_predicate_skips_and_triggers_decide_dependants(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    run = client.submit(branchy(wf_name), {"value": 1})
    doc = run.wait(60)
    assert doc["state"] == "SUCCEEDED"
    assert states(doc) == {
        "emit": "SUCCEEDED",
        "big": "SKIPPED",  # is_big(1) is false
        "after_big": "SKIPPED",  # all_succeeded (default): a skipped upstream skips it
        "tolerant": "SUCCEEDED",  # none_failed: runs, the skipped input arrives as null
        "anyone": "SKIPPED",  # any_succeeded, but every upstream was skipped
        "either": "SUCCEEDED",  # any_succeeded: emit succeeded
    }
    assert doc["result"] == {"anyone": None, "either": 1, "tolerant": 1}
    skipped = [e for e in run.events() if e.get("to") == "SKIPPED"]
    assert {(e["step"], e["from"]) for e in skipped} == {
        ("big", "PENDING"), ("after_big", "PENDING"), ("anyone", "PENDING"),
    }  # fmt: skip
    assert {e["reason"] for e in skipped if e["step"] == "big"} == {"when"}
    assert doc["steps"]["big"]["attempts"] == 0, "a skipped step never ran"


def test_true_predicate_runs_the_branch(client: Client, workers: WorkerPool, wf_name: str) -> None:
    doc = client.submit(branchy(wf_name), {"value": 50}).wait(60)
    assert doc["state"] == "SUCCEEDED"
    assert set(states(doc).values()) == {"SUCCEEDED"}
    assert doc["steps"]["big"]["attempts"] == 1


def test_coverage_reports_the_edges_a_false_predicate_never_takes(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    wf = branchy(wf_name)
    for _ in range(3):
        assert client.submit(wf, {"value": 1}).wait(60)["state"] == "SUCCEEDED"
    report = client.coverage(wf)
    assert report["edges"] == 8
    assert sorted(report["never_taken"]) == sorted(
        ["emit → big", "big → after_big", "big → anyone", "after_big → anyone",
         "big → tolerant", "big → either"]
    )  # fmt: skip
    assert report["taken"] == 2  # emit → tolerant, emit → either
    assert client.submit(wf, {"value": 50}).wait(60)["state"] == "SUCCEEDED"
    assert client.coverage(wf)["never_taken"] == []


def test_a_failing_predicate_fails_the_step_visibly(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("emit", f"{B}:emit")
        .step("x", f"{B}:add_one", after=["emit"], when=f"{B}:explodes")
        .build()
    )
    doc = client.submit(wf, {}).wait(60)
    assert doc["state"] == "FAILED"
    assert doc["steps"]["x"]["state"] == "FAILED"
    assert "`when` predicate failed: ValueError('predicate bug')" in doc["error"]
