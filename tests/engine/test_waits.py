"""wait_for steps: signals complete them, timeouts fail or skip them."""

from __future__ import annotations

from typing import Any

from orchestrator.compiler import Plan
from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import TASK, Rig, moves, run_moves, until


def approval_plan(rig: Rig, **wait: Any) -> Plan:
    flow = rig.flow().step("a", TASK).step("approve", wait_for="go", after=["a"], **wait)
    return rig.install(flow.step("ship", TASK, after=["approve"]).build())


def test_a_wait_for_step_waits_and_a_signal_completes_it(rig: Rig) -> None:
    plan = approval_plan(rig)
    run_id = rig.start(plan)
    reached = rig.finish(run_id, plan, "a")
    assert ("approve", "PENDING", "WAITING") in moves(reached)
    assert rig.state(run_id, "approve") == "WAITING"
    assert rig.count("approve") == 0
    signalled = rig.engine.signal(run_id, "go", '{"by": "ops"}')
    assert isinstance(signalled, o.Signalled)
    assert (signalled.steps, signalled.ended) == (("approve",), None)
    assert moves(signalled) == [("approve", "WAITING", "SUCCEEDED"), ("ship", "PENDING", "QUEUED")]
    assert rig.count("ship") == 1
    _, claim = rig.claim(run_id, plan, "ship")
    assert claim.inputs.upstream_json == {"approve": '{"by": "ops"}'}


def test_a_signal_nobody_waits_for_is_not_waiting(rig: Rig) -> None:
    plan = approval_plan(rig)
    run_id = rig.start(plan)
    assert rig.engine.signal(run_id, "go", "{}") == o.NotWaiting({"approve": "PENDING"})
    assert rig.engine.signal(run_id, "unknown", "{}") == o.NotWaiting({})
    assert rig.state(run_id, "approve") == "PENDING"
    rig.finish(run_id, plan, "a")
    assert isinstance(rig.engine.signal(run_id, "go", "{}"), o.Signalled)
    assert rig.engine.signal(run_id, "go", "{}") == o.NotWaiting({"approve": "SUCCEEDED"})


def test_a_signal_to_a_finished_or_unknown_run_is_refused(rig: Rig) -> None:
    plan = approval_plan(rig)
    run_id = rig.start(plan)
    assert isinstance(rig.engine.cancel(run_id), o.CancelRequested)
    assert rig.engine.signal(run_id, "go", "{}") == o.Stop("CANCELLED")
    assert rig.engine.signal("no-such-run", "go", "{}") == o.Gone()


def test_a_wait_that_times_out_fails_the_step_and_the_run(rig: Rig) -> None:
    plan = approval_plan(rig, timeout=0.05)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    [(run, step, outcome)] = until(rig.upkeep.expire_waits, "the wait to time out")
    assert (run, step) == (run_id, "approve")
    assert isinstance(outcome, o.Recorded)
    assert outcome.ended is RunState.FAILED
    assert moves(outcome) == [("approve", "WAITING", "FAILED")]
    assert run_moves(outcome) == [("RUNNING", "FAILED")]
    assert "SignalTimeoutError: no signal go within 0.05s" in rig.reads.status(run_id)["error"]
    assert rig.upkeep.expire_waits() == []
    assert rig.engine.timeout(run_id, "approve") == o.Stop("FAILED")


def test_a_wait_that_times_out_with_on_timeout_skip_is_skipped(rig: Rig) -> None:
    plan = approval_plan(rig, timeout=0.05, on_timeout="skip")
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    [(_, _, outcome)] = until(rig.upkeep.expire_waits, "the wait to time out")
    assert isinstance(outcome, o.Recorded)
    assert outcome.ended is RunState.SUCCEEDED
    assert moves(outcome) == [("approve", "WAITING", "SKIPPED"), ("ship", "PENDING", "SKIPPED")]
    assert rig.count("ship") == 0


def test_a_signal_in_time_cancels_the_timeout(rig: Rig) -> None:
    plan = approval_plan(rig, timeout=30)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    assert rig.redis.zscore(rig.keys.timeouts, f"{run_id}|approve") is not None
    assert isinstance(rig.engine.signal(run_id, "go", "{}"), o.Signalled)
    assert rig.redis.zcard(rig.keys.timeouts) == 0
    assert rig.engine.timeout(run_id, "approve") == o.Stale("SUCCEEDED")


def test_a_gated_approval_whose_predicate_holds_starts_waiting(rig: Rig) -> None:
    flow = rig.flow().step("a", TASK).step("approve", wait_for="go", after=["a"], when="m:p")
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    attempt = Attempt(run_id, plan.ref, "approve")
    gate = rig.engine.claim(attempt, "w1")
    assert isinstance(gate, o.Run)
    assert gate.inputs.mode is o.Mode.GATE
    waiting = rig.engine.claim(attempt, "w1", gate_open=True)
    assert isinstance(waiting, o.Waiting)
    assert waiting.step == "approve"
    assert moves(waiting) == [("approve", "PENDING", "WAITING")]
    signalled = rig.engine.signal(run_id, "go", '"yes"')
    assert isinstance(signalled, o.Signalled)
    assert signalled.ended is RunState.SUCCEEDED
