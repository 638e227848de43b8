"""Run deadlines: a run not ended by its deadline is cancelled, with compensation."""

from __future__ import annotations

from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import TASK, Rig, run_moves, until

UNDO = "m:undo"


def test_a_deadline_cancels_a_waiting_run_and_compensates_what_completed(rig: Rig) -> None:
    flow = rig.flow().step("book", TASK, compensate=UNDO)
    flow = flow.step("approve", wait_for="go", after=["book"])
    plan = rig.install(flow.step("ship", TASK, after=["approve"]).build())
    submitted = rig.engine.submit(plan, "{}", key=None, deadline=0.2)
    assert isinstance(submitted, o.Submitted)
    run_id = submitted.run_id
    fields = rig.fields(run_id)
    assert abs(float(fields["deadline_at"]) - float(fields["created_at"]) - 0.2) < 1e-3
    assert rig.reads.status(run_id)["deadline_at"] is not None
    rig.finish(run_id, plan, "book", '"booking-1"')
    assert rig.state(run_id, "approve") == "WAITING"
    [(run, outcome)] = until(rig.upkeep.expire_deadlines, "the deadline to pass")
    assert run == run_id
    assert isinstance(outcome, o.CancelRequested)
    assert (outcome.state, outcome.already) == ("CANCELLING", False)
    [moved] = [d for d in outcome.decisions if isinstance(d, o.RunMoved)]
    assert (moved.src, moved.dst, moved.reason) == (
        "RUNNING",
        "CANCELLING",
        "deadline of 0.2s passed",
    )
    assert rig.count("book.undo") == 1
    assert rig.upkeep.expire_deadlines() == []
    assert rig.engine.signal(run_id, "go", "{}") == o.Stop("CANCELLING")
    attempt = Attempt(run_id, plan.ref, "book", index=-1)  # its compensation, claimed as usual
    assert isinstance(rig.engine.undo_claim(attempt, "w1"), o.Run)
    ended = rig.engine.undo_done(attempt)
    assert isinstance(ended, o.UndoRecorded)
    assert ended.ended is RunState.CANCELLED
    doc = rig.reads.status(run_id)
    assert doc["error"] == "deadline of 0.2s passed"
    assert doc["steps"]["book"]["state"] == "COMPENSATED"


def test_a_run_that_ends_in_time_drops_its_deadline(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    submitted = rig.engine.submit(plan, "{}", key=None, deadline=3600)
    assert isinstance(submitted, o.Submitted)
    assert rig.redis.zscore(rig.keys.deadlines, submitted.run_id) is not None
    rig.finish(submitted.run_id, plan, "a")
    assert rig.state(submitted.run_id) == "SUCCEEDED"
    assert rig.redis.zscore(rig.keys.deadlines, submitted.run_id) is None


def test_a_deadline_of_a_finished_run_changes_nothing(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    assert rig.engine.deadline(run_id) == o.Final("SUCCEEDED")
    assert rig.engine.deadline("no-such-run") == o.Gone()
    assert "deadline_at" not in rig.fields(run_id)


def test_the_deadline_reads_in_hours_or_minutes_when_it_is_whole(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    for seconds, said in ((7200, "2h"), (90 * 60, "90m"), (45, "45s")):
        submitted = rig.engine.submit(plan, "{}", key=None, deadline=seconds)
        assert isinstance(submitted, o.Submitted)
        outcome = rig.engine.deadline(submitted.run_id)
        assert isinstance(outcome, o.CancelRequested)
        assert outcome.ended is RunState.CANCELLED
        assert run_moves(outcome)[0] == ("RUNNING", "CANCELLING")
        assert rig.reads.status(submitted.run_id)["error"] == f"deadline of {said} passed"


def test_a_deadline_cancels_the_child_runs_too(rig: Rig) -> None:
    """A run past its deadline is cancelled as a cancel is: down its tree of child runs."""
    from tests.engine.test_children import child_plan, collect, spawn

    leaf = child_plan(rig, "leaf")
    flow = rig.flow().step("prep", TASK).step("kid", workflow=leaf.ref, after=["prep"])
    plan = rig.install(flow.build())
    submitted = rig.engine.submit(plan, "{}", key=None, deadline=0.2)
    assert isinstance(submitted, o.Submitted)
    run_id = submitted.run_id
    rig.finish(run_id, plan, "prep")
    child = spawn(rig, run_id, plan, "kid").child
    assert rig.state(child) == "RUNNING"
    [(run, outcome)] = until(rig.upkeep.expire_deadlines, "the deadline to pass")
    assert (run, outcome.state) == (run_id, "CANCELLING")
    assert rig.state(child) == "CANCELLED", "the deadline left its child running"
    kid = collect(rig, run_id, plan, "kid")  # the child's end queued the step's message
    assert isinstance(
        rig.engine.fail(kid, {"type": "E", "message": "x"}, retry_in=None), o.Recorded
    )
    assert rig.state(run_id) == "CANCELLED"
    assert rig.reads.status(run_id)["error"] == "deadline of 0.2s passed"
