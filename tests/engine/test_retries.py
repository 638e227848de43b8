"""fail: retries through the delayed set, final failures, and the retry budget's veto."""

from __future__ import annotations

from orchestrator.resilience.decision import Veto
from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, again, moves, of_type, run_moves, until

NO_BUDGET = {"llm": {"retry_budget": {"ratio": 0, "min_per_s": 0}}}


def test_a_retried_failure_waits_in_the_delayed_set_until_promoted(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    failed = rig.engine.fail(attempt, ERROR, retry_in=0.01)
    assert isinstance(failed, o.Recorded)
    assert failed.retry_in == 0.01
    assert (failed.ended, failed.veto) == (None, None)
    assert moves(failed) == [("a", "RUNNING", "RETRYING")]
    assert rig.state(run_id, "a") == "RETRYING"
    [entry] = rig.delayed()
    assert (entry["r"], entry["s"], entry["k"]) == (run_id, "a", "retry")
    assert rig.count("a") == 1
    assert rig.engine.claim(again(attempt), "w2") == o.Skip("RETRYING")
    until(rig.upkeep.promote_due, "the retry to come due")
    assert rig.state(run_id, "a") == "QUEUED"
    assert rig.delayed() == []
    assert rig.count("a") == 2
    second = rig.engine.claim(again(attempt), "w2")
    assert isinstance(second, o.Run)
    assert second.inputs.attempt == 2
    assert rig.engine.complete(attempt, "1", []) == o.Stale("token")


def test_promote_drops_a_retry_whose_run_was_cancelled(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    assert isinstance(rig.engine.fail(attempt, ERROR, retry_in=0.01), o.Recorded)
    cancelled = rig.engine.cancel(run_id)
    assert isinstance(cancelled, o.CancelRequested)
    assert cancelled.ended is RunState.CANCELLED
    until(lambda: not rig.upkeep.promote_due() and rig.delayed() == [], "the entry to be dropped")
    assert rig.count("a") == 1
    assert rig.state(run_id, "a") == "RETRYING"


def test_a_final_failure_fails_the_step_and_the_run(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    failed = rig.engine.fail(attempt, ERROR, retry_in=None, edge="a>b")
    assert isinstance(failed, o.Recorded)
    assert failed.ended is RunState.FAILED
    assert moves(failed) == [("a", "RUNNING", "FAILED")]
    assert run_moves(failed) == [("RUNNING", "FAILED")]
    status = rig.reads.status(run_id)
    assert status["error"] == "step a failed: RuntimeError: boom"
    assert status["steps"]["a"]["error"] == "RuntimeError: boom"
    assert status["steps"]["b"]["state"] == "PENDING"
    assert rig.reads.stats(plan.ref) == {"bad:a>b": 1}
    assert rig.engine.claim(Attempt(run_id, plan.ref, "b"), "w1") == o.Stop("FAILED")


def test_a_retry_on_a_run_that_stopped_is_vetoed(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK).build())
    run_id = rig.start(plan)
    a, _ = rig.claim(run_id, plan, "a")
    b, _ = rig.claim(run_id, plan, "b")
    assert isinstance(rig.engine.fail(a, ERROR, retry_in=None), o.Recorded)
    late = rig.engine.fail(b, ERROR, retry_in=5.0)
    assert isinstance(late, o.Recorded)
    assert late.veto is Veto.RUN_STOPPED
    assert late.retry_in is None
    assert rig.state(run_id, "b") == "FAILED"
    assert rig.delayed() == []


def test_the_retry_budget_vetoes_a_retry(rig: Rig) -> None:
    plan = rig.install(
        rig.flow(dependencies=NO_BUDGET).step("call", TASK, dependency="llm").build()
    )
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "call", dependency="llm")
    failed = rig.engine.fail(attempt, ERROR, retry_in=1.0, called=True)
    assert isinstance(failed, o.Recorded)
    assert failed.veto is Veto.BUDGET
    assert failed.retry_in is None
    assert failed.ended is RunState.FAILED
    assert of_type(failed, o.BudgetRefused) == [o.BudgetRefused("call", "llm")]
    assert moves(failed) == [("call", "RUNNING", "FAILED")]
    assert rig.delayed() == []
    assert "the retry budget of llm is spent" in rig.reads.status(run_id)["error"]


def test_a_refused_retry_with_a_fallback_asks_for_the_fallback(rig: Rig) -> None:
    wf = rig.flow(dependencies=NO_BUDGET).step("call", TASK, dependency="llm", fallback="m:g")
    plan = rig.install(wf.build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "call", dependency="llm")
    asked = rig.engine.fail(attempt, ERROR, retry_in=1.0, called=True)
    assert isinstance(asked, o.UseFallback)
    assert asked.dependency == "llm"
    assert of_type(asked, o.BudgetRefused) == [o.BudgetRefused("call", "llm")]
    assert rig.state(run_id, "call") == "RUNNING"
    assert rig.delayed() == []
    done = rig.engine.complete(attempt, '"from the fallback"', [], how="fallback")
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    step = rig.reads.status(run_id)["steps"]["call"]
    assert (step["output"], step.get("fallback")) == ("from the fallback", True)
