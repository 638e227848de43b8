"""Sagas: compensation after a failure, cancel, resume and the operator's recompensate."""

from __future__ import annotations

from orchestrator.compiler import Plan
from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, again, moves, of_type, run_moves, until

UNDO = "m:undo"


def saga_plan(rig: Rig) -> Plan:
    """book (compensable) -> pay (compensable) -> ship."""
    flow = rig.flow().step("book", TASK, compensate=UNDO)
    flow = flow.step("pay", TASK, after=["book"], compensate=UNDO)
    return rig.install(flow.step("ship", TASK, after=["pay"]).build())


def failed_saga(rig: Rig, plan: Plan) -> tuple[str, o.Recorded]:
    """A run whose book and pay succeeded and whose ship failed for good."""
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "book", '"booking-1"')
    rig.finish(run_id, plan, "pay", '"payment-1"')
    ship, _ = rig.claim(run_id, plan, "ship")
    failed = rig.engine.fail(ship, ERROR, retry_in=None)
    assert isinstance(failed, o.Recorded)
    return run_id, failed


def undo(rig: Rig, run_id: str, plan: Plan, step: str) -> tuple[Attempt, o.Run]:
    attempt = Attempt(run_id, plan.ref, step, index=-1)
    claim = rig.engine.undo_claim(attempt, "w1")
    assert isinstance(claim, o.Run), claim
    return attempt, claim


def test_a_failure_after_compensable_steps_compensates_the_latest_first(rig: Rig) -> None:
    plan = saga_plan(rig)
    run_id, failed = failed_saga(rig, plan)
    assert failed.ended is None
    assert run_moves(failed) == [("RUNNING", "COMPENSATING")]
    assert moves(failed)[-1] == ("pay", "SUCCEEDED", "COMPENSATING")
    assert rig.state(run_id) == "COMPENSATING"
    assert rig.count("pay.undo") == 1
    assert rig.count("book.undo") == 0
    pay, claim = undo(rig, run_id, plan, "pay")
    assert claim.inputs.mode is o.Mode.COMPENSATE
    assert claim.inputs.upstream_json == {"book": '"booking-1"', "pay": '"payment-1"'}
    assert [n.what for n in of_type(claim, o.CompensationNote)] == ["started"]
    assert rig.engine.undo_claim(again(pay), "w2") == o.Skip("RUNNING")
    undone = rig.engine.undo_done(pay)
    assert isinstance(undone, o.UndoRecorded)
    assert (undone.outcome, undone.ended) == (o.UndoOutcome.COMPENSATED, None)
    assert moves(undone) == [
        ("pay", "COMPENSATING", "COMPENSATED"),
        ("book", "SUCCEEDED", "COMPENSATING"),
    ]
    assert rig.engine.undo_done(pay) == o.Stale("COMPENSATED")
    book, _ = undo(rig, run_id, plan, "book")
    last = rig.engine.undo_done(book)
    assert isinstance(last, o.UndoRecorded)
    assert (last.outcome, last.ended) == (o.UndoOutcome.COMPENSATED, RunState.COMPENSATED)
    status = rig.reads.status(run_id)
    assert status["state"] == "COMPENSATED"
    assert status["error"] == "step ship failed: RuntimeError: boom"
    assert [status["steps"][s]["state"] for s in ("book", "pay", "ship")] == [
        "COMPENSATED",
        "COMPENSATED",
        "FAILED",
    ]


def test_a_compensable_step_still_running_at_the_failure_is_undone_once_it_ends(
    rig: Rig,
) -> None:
    flow = rig.flow().step("book", TASK, compensate=UNDO).step("check", TASK)
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    book, _ = rig.claim(run_id, plan, "book")
    check, _ = rig.claim(run_id, plan, "check")
    assert isinstance(rig.engine.fail(check, ERROR, retry_in=None), o.Recorded)
    assert rig.state(run_id) == "COMPENSATING"
    assert rig.count("book.undo") == 0
    late = rig.engine.complete(book, '"booking-2"', [])
    assert isinstance(late, o.Recorded)
    assert moves(late) == [("book", "RUNNING", "SUCCEEDED"), ("book", "SUCCEEDED", "COMPENSATING")]
    assert rig.count("book.undo") == 1


def test_a_compensation_retry_goes_through_the_delayed_set(rig: Rig) -> None:
    plan = saga_plan(rig)
    run_id, _ = failed_saga(rig, plan)
    pay, _ = undo(rig, run_id, plan, "pay")
    retrying = rig.engine.undo_done(pay, ERROR, retry_in=0.01)
    assert isinstance(retrying, o.UndoRecorded)
    assert retrying.outcome is o.UndoOutcome.RETRYING
    [note] = of_type(retrying, o.CompensationNote)
    assert (note.what, note.attempt, note.delay) == ("retry", 1, 0.01)
    assert [(e["s"], e["k"]) for e in rig.delayed()] == [("pay", "undo")]
    until(rig.upkeep.promote_due, "the compensation retry to come due")
    assert rig.count("pay.undo") == 2
    _, second = undo(rig, run_id, plan, "pay")
    assert second.inputs.attempt == 2


def test_a_compensation_failed_for_good_can_be_recompensated(rig: Rig) -> None:
    plan = saga_plan(rig)
    run_id, _ = failed_saga(rig, plan)
    pay, _ = undo(rig, run_id, plan, "pay")
    gave_up = rig.engine.undo_done(pay, ERROR, retry_in=None)
    assert isinstance(gave_up, o.UndoRecorded)
    assert (gave_up.outcome, gave_up.ended) == (
        o.UndoOutcome.FAILED,
        RunState.COMPENSATION_FAILED,
    )
    assert rig.state(run_id, "pay") == "COMPENSATION_FAILED"
    assert rig.engine.recompensate(run_id) == o.Reopened("pay")
    assert rig.state(run_id) == "COMPENSATING"
    assert rig.state(run_id, "pay") == "COMPENSATING"
    assert rig.reads.status(run_id)["error"] == "step ship failed: RuntimeError: boom"
    assert rig.count("pay.undo") == 2
    pay, claim = undo(rig, run_id, plan, "pay")
    assert claim.inputs.attempt == 1
    assert isinstance(rig.engine.undo_done(pay), o.UndoRecorded)
    book, _ = undo(rig, run_id, plan, "book")
    done = rig.engine.undo_done(book)
    assert isinstance(done, o.UndoRecorded)
    assert done.ended is RunState.COMPENSATED


def test_recompensate_without_a_failed_compensation_is_wrong_state(rig: Rig) -> None:
    plan = saga_plan(rig)
    run_id = rig.start(plan)
    assert rig.engine.recompensate(run_id) == o.WrongState("RUNNING")
    assert rig.engine.recompensate("no-such-run") == o.Gone()


def test_cancel_waits_for_the_running_step_then_compensates_it(rig: Rig) -> None:
    plan = saga_plan(rig)
    run_id = rig.start(plan)
    book, _ = rig.claim(run_id, plan, "book")
    requested = rig.engine.cancel(run_id, "operator")
    assert isinstance(requested, o.CancelRequested)
    assert (requested.state, requested.already, requested.ended) == ("CANCELLING", False, None)
    again_ = rig.engine.cancel(run_id)
    assert isinstance(again_, o.CancelRequested)
    assert (again_.state, again_.already) == ("CANCELLING", True)
    finished = rig.engine.complete(book, '"booking-3"', [])
    assert isinstance(finished, o.Recorded)
    assert finished.ended is None
    assert rig.state(run_id, "pay") == "PENDING"
    assert rig.count("book.undo") == 1
    undo_book, _ = undo(rig, run_id, plan, "book")
    ended = rig.engine.undo_done(undo_book)
    assert isinstance(ended, o.UndoRecorded)
    assert ended.ended is RunState.CANCELLED
    assert rig.engine.cancel(run_id) == o.Final("CANCELLED")
    assert rig.engine.cancel("no-such-run") == o.Gone()


def test_a_failed_run_resumes_once_as_a_new_run_from_its_failed_step(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a", '"kept"')
    b, _ = rig.claim(run_id, plan, "b")
    assert isinstance(rig.engine.fail(b, ERROR, retry_in=None), o.Recorded)
    assert rig.state(run_id) == "FAILED"
    resumed = rig.engine.resume(run_id)
    assert isinstance(resumed, o.Resumed)
    assert resumed.created
    assert rig.engine.resume(run_id) == o.Resumed(resumed.run_id, created=False)
    new = resumed.run_id
    assert rig.state(run_id) == "FAILED"
    assert rig.fields(new)["resumed_from"] == run_id
    assert rig.fields(run_id)["resumed_as"] == new
    assert (rig.state(new), rig.state(new, "a"), rig.state(new, "b")) == (
        "RUNNING",
        "SUCCEEDED",
        "QUEUED",
    )
    assert rig.count("a") == 1
    assert rig.count("b") == 2
    assert rig.engine.claim(Attempt(new, plan.ref, "a"), "w1") == o.Skip("SUCCEEDED")
    b2, claim = rig.claim(new, plan, "b")
    assert claim.inputs.upstream_json == {"a": '"kept"'}
    done = rig.engine.complete(b2, '"b"', [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED


def test_resume_of_a_run_that_did_not_fail_is_refused(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    assert rig.engine.resume(run_id) == o.WrongState("RUNNING")
    rig.finish(run_id, plan, "a")
    assert rig.engine.resume(run_id) == o.WrongState("SUCCEEDED")
    assert rig.engine.resume("no-such-run") == o.Gone()


def test_a_compensation_keeps_the_steps_own_times(rig: Rig) -> None:
    """The step's queued/started/finished times stay its own; the undo has its own fields."""
    plan = rig.install(
        rig.flow().step("a", TASK, compensate=TASK).step("b", TASK, after=["a"]).build()
    )
    run = rig.start(plan)
    rig.finish(run, plan, "a")
    before = {f: rig.fields(run).get(f"a.{f}") for f in ("q", "s", "f")}
    attempt, _ = rig.claim(run, plan, "b")
    rig.engine.fail(attempt, ERROR, retry_in=None)
    undo = Attempt(run, plan.ref, "a", -1)
    claimed = rig.engine.undo_claim(undo, "w")
    assert isinstance(claimed, o.Run)
    rig.engine.undo_done(undo)
    after = rig.fields(run)
    assert {f: after.get(f"a.{f}") for f in ("q", "s", "f")} == before
    assert float(before["q"] or 0) <= float(before["s"] or 0) <= float(before["f"] or 0)
    undo_times = [float(after[f"a.{f}"]) for f in ("cq", "cs", "cf")]
    assert undo_times == sorted(undo_times) and undo_times[0] >= float(before["f"] or 0)
    doc = rig.reads.status(run)["steps"]["a"]
    assert doc["compensation"]["attempts"] == 1
    assert doc["queued_at"] <= doc["started_at"] <= doc["finished_at"]
