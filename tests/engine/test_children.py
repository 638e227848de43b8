"""Child workflows in the engine: spawn, collect, retry, cancel down the tree, undo as a whole."""

from __future__ import annotations

import json

from orchestrator import Flow
from orchestrator.children import child_run_id
from orchestrator.compiler import Plan
from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, moves, until
from workers.recovery import recover_lost
from workers.runtime import StepRuntime

UNDO = "m:undo"


def child_plan(rig: Rig, suffix: str, *, compensable: bool = False, grandchild: str = "") -> Plan:
    """A workflow `{rig}-{suffix}`: one task step, and a child step when ``grandchild`` is given."""
    flow = Flow(f"{rig.name}-{suffix}", 1)
    flow = flow.step("work", TASK, compensate=UNDO if compensable else None)
    if grandchild:
        flow = flow.step("deeper", workflow=grandchild, after=["work"])
    return rig.install(flow.build())


def parent_plan(rig: Rig, child: Plan, *, then_fail: bool = False) -> Plan:
    flow = rig.flow().step("prep", TASK).step("kid", workflow=child.ref, after=["prep"])
    if then_fail:
        flow = flow.step("last", TASK, after=["kid"])
    return rig.install(flow.build())


def spawn(rig: Rig, run_id: str, plan: Plan, step: str, payload: str = "{}") -> o.Spawned:
    attempt, claim = rig.claim(run_id, plan, step)
    assert claim.inputs.mode is o.Mode.TASK
    started = rig.engine.spawn(attempt, payload)
    assert isinstance(started, o.Spawned), started
    return started


def collect(rig: Rig, run_id: str, plan: Plan, step: str, index: int | None = None) -> Attempt:
    attempt, claim = rig.claim(run_id, plan, step, index=index)
    assert claim.inputs.mode is o.Mode.CHILD
    return attempt


def test_a_child_step_starts_one_child_waits_for_it_and_takes_its_result(rig: Rig) -> None:
    child = child_plan(rig, "c")
    plan = parent_plan(rig, child)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "prep", '"p"')
    started = spawn(rig, run_id, plan, "kid", '{"prep": "p", "x": 1}')
    assert started.created
    assert started.child == child_run_id(run_id, "kid", None, 1)
    assert ("kid", "RUNNING", "WAITING") in moves(started)
    parent = rig.fields(run_id)
    assert parent["kid.state"] == "WAITING"
    assert parent["kid.child"] == started.child
    assert parent["inflight"] == "1"  # the parent attempt stays in flight while its child runs
    kid = rig.fields(started.child)
    assert (kid["state"], kid["wf"], kid["parent"]) == ("RUNNING", child.ref, f"{run_id}|kid|")
    assert json.loads(kid["input"]) == {"prep": "p", "x": 1}
    assert kid["depth"] == "1"
    # A redelivered message for the step while the child runs: it waits, nothing starts.
    assert isinstance(rig.engine.claim(Attempt(run_id, plan.ref, "kid"), "w2"), o.Waiting)
    before = rig.count("kid")
    rig.finish(started.child, child, "work", '{"answer": 42}')
    assert rig.state(started.child) == "SUCCEEDED"
    assert rig.count("kid") == before + 1  # the child's end queued the parent step's message
    attempt = collect(rig, run_id, plan, "kid")
    done = rig.engine.complete(attempt, '{"answer": 42}', [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    status = rig.reads.status(run_id)
    assert status["steps"]["kid"]["output"] == {"answer": 42}
    assert status["steps"]["kid"]["child"] == started.child
    assert rig.reads.status(started.child)["parent"] == {"run": run_id, "step": "kid"}


def test_a_failed_child_retries_the_step_with_a_new_child(rig: Rig) -> None:
    child = child_plan(rig, "c")
    plan = parent_plan(rig, child)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "prep")
    first = spawn(rig, run_id, plan, "kid")
    work, _ = rig.claim(first.child, child, "work")
    assert isinstance(rig.engine.fail(work, ERROR, retry_in=None), o.Recorded)
    assert rig.state(first.child) == "FAILED"
    attempt = collect(rig, run_id, plan, "kid")
    retried = rig.engine.fail(attempt, ERROR, retry_in=0.0)
    assert isinstance(retried, o.Recorded)
    assert retried.retry_in == 0.0
    assert rig.state(run_id, "kid") == "RETRYING"
    until(lambda: rig.upkeep.promote_due() or None, "the retry to be promoted")
    second = spawn(rig, run_id, plan, "kid")
    assert second.child == child_run_id(run_id, "kid", None, 2) != first.child
    assert rig.state(first.child) == "FAILED"  # the failed child is left as it ended


def test_cancelling_the_parent_cancels_the_whole_tree(rig: Rig) -> None:
    leaf = child_plan(rig, "leaf")
    middle = child_plan(rig, "mid", grandchild=leaf.ref)
    plan = parent_plan(rig, middle)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "prep")
    mid = spawn(rig, run_id, plan, "kid").child
    rig.finish(mid, middle, "work")
    low = spawn(rig, mid, middle, "deeper").child
    cancelled = rig.engine.cancel(run_id, "enough")
    assert isinstance(cancelled, o.CancelRequested)
    assert cancelled.state == "CANCELLING"
    assert rig.state(mid) == "CANCELLING"
    assert rig.state(low) == "CANCELLED"  # nothing of its own in flight: it ended at once
    # The leaf's end queued the middle step's message: collected, it fails, and the middle ends.
    deeper = collect(rig, mid, middle, "deeper")
    failed = rig.engine.fail(deeper, ERROR, retry_in=1.0)
    assert isinstance(failed, o.Recorded)
    assert failed.veto is not None  # a stopped run retries nothing
    assert rig.state(mid) == "CANCELLED"
    kid = collect(rig, run_id, plan, "kid")
    assert isinstance(rig.engine.fail(kid, ERROR, retry_in=None), o.Recorded)
    assert rig.state(run_id) == "CANCELLED"


def test_a_succeeded_child_is_undone_as_a_whole_when_the_parent_compensates(rig: Rig) -> None:
    child = child_plan(rig, "c", compensable=True)
    plan = parent_plan(rig, child, then_fail=True)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "prep")
    kid = spawn(rig, run_id, plan, "kid").child
    rig.finish(kid, child, "work", '"done"')
    attempt = collect(rig, run_id, plan, "kid")
    assert isinstance(rig.engine.complete(attempt, '"done"', []), o.Recorded)
    last, _ = rig.claim(run_id, plan, "last")
    assert isinstance(rig.engine.fail(last, ERROR, retry_in=None), o.Recorded)
    assert rig.state(run_id, "kid") == "COMPENSATING"
    undo = Attempt(run_id, plan.ref, "kid", -1)
    assert isinstance(rig.engine.undo_claim(undo, "w1"), o.Run)
    assert rig.engine.undo_child(undo) == o.ChildrenUndone(o.ChildUndo.PENDING)
    assert rig.state(kid) == "COMPENSATING"  # reopened: the child runs its own saga
    assert rig.state(kid, "work") == "COMPENSATING"
    work = Attempt(kid, child.ref, "work", -1)
    assert isinstance(rig.engine.undo_claim(work, "w1"), o.Run)
    assert isinstance(rig.engine.undo_done(work), o.UndoRecorded)
    assert rig.state(kid) == "COMPENSATED"
    again = Attempt(run_id, plan.ref, "kid", -1)
    assert isinstance(rig.engine.undo_claim(again, "w1"), o.Run)
    assert rig.engine.undo_child(again) == o.ChildrenUndone(o.ChildUndo.DONE)
    finished = rig.engine.undo_done(again)
    assert isinstance(finished, o.UndoRecorded)
    assert finished.ended is RunState.COMPENSATED


def test_a_child_beyond_max_depth_fails_the_step(rig: Rig) -> None:
    flow = rig.flow().step("again", workflow=rig.name, max_depth=1)
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    child = spawn(rig, run_id, plan, "again").child
    assert rig.fields(child)["depth"] == "1"
    attempt, _ = rig.claim(child, plan, "again")
    refused = rig.engine.spawn(attempt, "{}")
    assert isinstance(refused, o.Recorded)
    assert refused.failed
    assert rig.state(child, "again") == "FAILED"
    assert "ChildDepthError" in (rig.reads.step_error(child, "again") or "")


def started_map(rig: Rig, child: Plan) -> tuple[Plan, str]:
    """A run whose step ``each`` maps ``child`` over the two elements ``split`` gave."""
    flow = rig.flow().step("split", TASK).step("each", workflow=child.ref, map="split")
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    split, _ = rig.claim(run_id, plan, "split")
    assert isinstance(rig.engine.complete(split, '["a","b"]', ['"a"', '"b"']), o.Recorded)
    return plan, run_id


def test_a_map_starts_one_child_per_element_and_gathers_their_results(rig: Rig) -> None:
    child = child_plan(rig, "c")
    plan, run_id = started_map(rig, child)
    kids = []
    for k in (0, 1):
        attempt, claim = rig.claim(run_id, plan, "each", index=k)
        assert claim.inputs.upstream_json == {"split": json.dumps("ab"[k])}  # its element
        started = rig.engine.spawn(attempt, json.dumps({"split": "ab"[k]}))
        assert isinstance(started, o.Spawned)
        assert started.child == child_run_id(run_id, "each", k, 1)
        kids.append(started.child)
    assert rig.state(run_id, "each") == "RUNNING"
    assert isinstance(rig.engine.claim(Attempt(run_id, plan.ref, "each", 1), "w2"), o.Waiting)
    for k, kid in enumerate(kids):
        rig.finish(kid, child, "work", json.dumps(k * 10))
        attempt = collect(rig, run_id, plan, "each", index=k)
        assert isinstance(rig.engine.complete(attempt, json.dumps(k * 10), []), o.Recorded)
    assert rig.state(run_id) == "SUCCEEDED"
    each = rig.reads.status(run_id)["steps"]["each"]
    assert each["output"] == [0, 10]
    assert each["children"] == kids


def test_cancel_reaches_the_children_of_a_map(rig: Rig) -> None:
    child = child_plan(rig, "c")
    plan, run_id = started_map(rig, child)
    kids = []
    for k in (0, 1):
        attempt, _ = rig.claim(run_id, plan, "each", index=k)
        started = rig.engine.spawn(attempt, "{}")
        assert isinstance(started, o.Spawned)
        kids.append(started.child)
    assert isinstance(rig.engine.cancel(run_id), o.CancelRequested)
    assert [rig.state(k) for k in kids] == ["CANCELLED", "CANCELLED"]
    attempt = collect(rig, run_id, plan, "each", index=0)
    assert isinstance(rig.engine.fail(attempt, ERROR, retry_in=None), o.Recorded)
    assert rig.state(run_id, "each") == "FAILED"
    assert rig.state(run_id) == "CANCELLING"  # the other child's end is still to come
    # The step failed already: the other element's end has nowhere to go, its attempt is over.
    late = rig.engine.claim(Attempt(run_id, plan.ref, "each", 1), "w1")
    assert isinstance(late, o.Skip)
    assert late.state == "FAILED"
    assert rig.state(run_id) == "CANCELLED"


def test_a_lost_collection_is_recorded_by_the_sweeper_without_a_second_child(rig: Rig) -> None:
    child = child_plan(rig, "c")
    plan = parent_plan(rig, child)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "prep")
    kid = spawn(rig, run_id, plan, "kid").child
    rig.finish(kid, child, "work", '"made"')
    short = rig.store_with(lease_seconds=0.05)
    lost = Attempt(run_id, plan.ref, "kid")
    claim = short.engine.claim(lost, "w-killed")  # its worker dies before it records anything
    assert isinstance(claim, o.Run)
    assert claim.inputs.mode is o.Mode.CHILD
    runtime = StepRuntime(rig.store, default_queue=rig.queue)
    until(lambda: recover_lost(runtime) or None, "the lost lease to be swept")
    assert rig.state(run_id) == "SUCCEEDED"
    status = rig.reads.status(run_id)["steps"]["kid"]
    assert (status["output"], status["attempts"], status["child"]) == ("made", 1, kid)


def test_a_parent_that_fails_waits_for_its_running_child_and_undoes_it(rig: Rig) -> None:
    child = child_plan(rig, "c", compensable=True)
    flow = rig.flow().step("kid", workflow=child.ref).step("bad", TASK)
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    kid = spawn(rig, run_id, plan, "kid").child
    bad, _ = rig.claim(run_id, plan, "bad")
    assert isinstance(rig.engine.fail(bad, ERROR, retry_in=None), o.Recorded)
    assert rig.state(run_id) == "COMPENSATING"  # not FAILED: its child is still running
    rig.finish(kid, child, "work", '"w"')
    attempt = collect(rig, run_id, plan, "kid")
    assert isinstance(rig.engine.complete(attempt, '"w"', []), o.Recorded)
    assert rig.state(run_id, "kid") == "COMPENSATING"  # the late success is undone as a whole
    undo = Attempt(run_id, plan.ref, "kid", -1)
    assert isinstance(rig.engine.undo_claim(undo, "w1"), o.Run)
    assert rig.engine.undo_child(undo) == o.ChildrenUndone(o.ChildUndo.PENDING)
    assert rig.state(kid) == "COMPENSATING"


def test_a_child_inherits_its_parents_priority_and_fairness_key(rig: Rig) -> None:
    """children.lua inherited(): the one place a child run copies its parent's attributes."""
    child = child_plan(rig, "c")
    plan = parent_plan(rig, child)
    submitted = rig.engine.submit(plan, "{}", key=None, priority=7, fairness_key="acme")
    assert isinstance(submitted, o.Submitted)
    run_id = submitted.run_id
    rig.finish(run_id, plan, "prep")
    started = spawn(rig, run_id, plan, "kid")
    doc = rig.reads.status(started.child)
    assert (doc["priority"], doc["fairness_key"]) == (7, "acme")
    assert rig.fields(started.child)["depth"] == "1"
    plain = rig.start(plan)  # a parent of the default priority and no key: nothing copied
    rig.finish(plain, plan, "prep")
    other = rig.reads.status(spawn(rig, plain, plan, "kid").child)
    assert (other["priority"], other["fairness_key"]) == (0, None)
