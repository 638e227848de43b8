"""claim: what a worker is told when it picks up a step's message."""

from __future__ import annotations

from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import TASK, Rig, again, moves, run_moves


def test_claim_runs_a_queued_step_with_its_inputs(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan, '{"x": 1}')
    rig.finish(run_id, plan, "a", '{"v": 2}')
    attempt = Attempt(run_id, plan.ref, "b")
    claim = rig.engine.claim(attempt, "w1")
    assert isinstance(claim, o.Run)
    assert claim.inputs.attempt == 1
    assert claim.inputs.mode is o.Mode.TASK
    assert claim.inputs.input_json == '{"x": 1}'
    assert claim.inputs.upstream_json == {"a": '{"v": 2}'}
    assert claim.inputs.queued_at is not None
    assert claim.inputs.started_at is not None
    assert claim.inputs.queue_delay is not None
    assert moves(claim) == [("b", "QUEUED", "RUNNING")]
    assert rig.state(run_id, "b") == "RUNNING"
    assert rig.reads.attempts_of(attempt) == 1


def test_a_duplicate_claim_of_a_running_step_is_skipped(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    first, _ = rig.claim(run_id, plan, "a")
    second = rig.engine.claim(again(first), "w2")
    assert second == o.Skip("RUNNING")
    assert rig.fields(run_id)["a.by"] == "w1"
    assert rig.fields(run_id)["a.tok"] == first.token
    assert rig.reads.attempts_of(first) == 1


def test_a_claim_of_a_finished_step_is_skipped(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK).build())
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    assert rig.engine.claim(Attempt(run_id, plan.ref, "a"), "w1") == o.Skip("SUCCEEDED")


def test_a_claim_on_a_cancelled_run_stops(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    cancelled = rig.engine.cancel(run_id, "enough")
    assert isinstance(cancelled, o.CancelRequested)
    assert (cancelled.state, cancelled.ended) == ("CANCELLED", RunState.CANCELLED)
    assert run_moves(cancelled) == [("RUNNING", "CANCELLING"), ("CANCELLING", "CANCELLED")]
    assert rig.engine.claim(Attempt(run_id, plan.ref, "a"), "w1") == o.Stop("CANCELLED")
    assert rig.state(run_id, "a") == "QUEUED"


def test_a_claim_for_an_unknown_run_is_gone(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    assert rig.engine.claim(Attempt("no-such-run", plan.ref, "a"), "w1") == o.Gone()


def test_a_gated_step_is_claimed_as_a_gate_and_skipped_when_false(rig: Rig) -> None:
    plan = rig.install(
        rig.flow().step("a", TASK).step("b", TASK, after=["a"], when="m:is_big").build()
    )
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a", "5")
    assert rig.count("b") == 1
    attempt = Attempt(run_id, plan.ref, "b")
    gate = rig.engine.claim(attempt, "w1")
    assert isinstance(gate, o.Run)
    assert gate.inputs.mode is o.Mode.GATE
    assert gate.inputs.upstream_json == {"a": "5"}
    assert gate.decisions == ()
    assert rig.state(run_id, "b") == "PENDING"
    skipped = rig.engine.skip(attempt)
    assert isinstance(skipped, o.Recorded)
    assert skipped.ended is RunState.SUCCEEDED
    assert moves(skipped) == [("b", "PENDING", "SKIPPED")]
    assert rig.state(run_id, "b") == "SKIPPED"
    assert rig.engine.skip(attempt) == o.Stop("SUCCEEDED")


def test_an_open_gate_runs_the_step(rig: Rig) -> None:
    plan = rig.install(
        rig.flow().step("a", TASK).step("b", TASK, after=["a"], when="m:is_big").build()
    )
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a", "5")
    attempt = Attempt(run_id, plan.ref, "b")
    assert isinstance(rig.engine.claim(attempt, "w1"), o.Run)
    opened = rig.engine.claim(attempt, "w1", gate_open=True)
    assert isinstance(opened, o.Run)
    assert opened.inputs.mode is o.Mode.TASK
    assert moves(opened) == [("b", "PENDING", "QUEUED"), ("b", "QUEUED", "RUNNING")]
    assert rig.engine.skip(attempt) == o.Stale("RUNNING")
    done = rig.engine.complete(attempt, "6", [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED


def test_a_skipped_step_skips_its_dependants(rig: Rig) -> None:
    plan = rig.install(
        rig.flow()
        .step("a", TASK)
        .step("b", TASK, after=["a"], when="m:is_big")
        .step("c", TASK, after=["b"])
        .step("d", TASK, after=["b"], trigger="none_failed")
        .build()
    )
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    attempt, _ = rig.claim(run_id, plan, "b")
    skipped = rig.engine.skip(attempt)
    assert isinstance(skipped, o.Recorded)
    assert skipped.ended is None
    assert moves(skipped) == [
        ("b", "PENDING", "SKIPPED"),
        ("c", "PENDING", "SKIPPED"),
        ("d", "PENDING", "QUEUED"),
    ]
    d, claim = rig.claim(run_id, plan, "d")
    assert claim.inputs.upstream_json == {"b": None}
    done = rig.engine.complete(d, "7", [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    assert rig.reads.status(run_id)["result"] == {"c": None, "d": 7}
