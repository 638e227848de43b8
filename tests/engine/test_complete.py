"""complete: recording outputs, fencing stale attempts, joins, maps and the runner lane."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from orchestrator.states import RunState
from orchestrator.store import Attempt, Lane
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, again, moves, run_moves


def test_completing_the_last_step_ends_the_run_with_its_result(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    done = rig.engine.complete(attempt, '{"answer": 42}', [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    assert (done.retry_in, done.veto, done.handoff) == (None, None, None)
    assert moves(done) == [("a", "RUNNING", "SUCCEEDED")]
    assert run_moves(done) == [("RUNNING", "SUCCEEDED")]
    status = rig.reads.status(run_id)
    assert status["state"] == "SUCCEEDED"
    assert status["result"] == {"answer": 42}
    assert status["steps"]["a"]["output"] == {"answer": 42}
    assert rig.reads.stats(plan.ref) == {"ok:a": 1}
    assert rig.redis.zscore(rig.keys.leases, attempt.lease_member()) is None


def test_a_complete_with_another_token_is_stale(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    assert rig.engine.complete(again(attempt), '"theirs"', []) == o.Stale("token")
    assert rig.state(run_id, "a") == "RUNNING"
    assert isinstance(rig.engine.complete(attempt, '"mine"', []), o.Recorded)
    assert rig.reads.status(run_id)["result"] == "mine"


def test_a_second_complete_of_the_same_attempt_is_stale(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    assert isinstance(rig.engine.complete(attempt, '"first"', []), o.Recorded)
    assert rig.engine.complete(attempt, '"second"', []) == o.Stale("SUCCEEDED")
    assert rig.engine.fail(attempt, {"type": "E", "message": "late"}, retry_in=None) == o.Stale(
        "SUCCEEDED"
    )
    assert rig.reads.status(run_id)["steps"]["a"]["output"] == "first"
    assert rig.reads.stats(plan.ref) == {"ok:a": 1}


def test_a_complete_for_an_unknown_run_is_gone(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    assert rig.engine.complete(Attempt("no-such-run", plan.ref, "a"), "1", []) == o.Gone()


def test_two_completions_racing_for_a_join_dispatch_it_once(rig: Rig) -> None:
    plan = rig.install(
        rig.flow()
        .step("a", TASK)
        .step("b", TASK, after=["a"])
        .step("c", TASK, after=["a"])
        .step("d", TASK, after=["b", "c"])
        .build()
    )
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a", '"a"')
    b, _ = rig.claim(run_id, plan, "b")
    c, _ = rig.claim(run_id, plan, "c")
    gate = threading.Barrier(2)

    def complete(attempt: Attempt) -> o.Recording:
        gate.wait()
        return rig.engine.complete(attempt, f'"{attempt.step}"', [])

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(complete, [b, c]))
    assert all(isinstance(r, o.Recorded) for r in results)
    dispatched = [m for r in results for m in moves(r) if m[0] == "d"]
    assert dispatched == [("d", "PENDING", "QUEUED")]
    assert rig.count("d") == 1
    assert rig.fields(run_id)["d.got"] == "2"
    assert rig.state(run_id, "d") == "QUEUED"
    d, claim = rig.claim(run_id, plan, "d")
    assert claim.inputs.upstream_json == {"b": '"b"', "c": '"c"'}
    done = rig.engine.complete(d, '"d"', [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    assert rig.count("d") == 1
    assert rig.reads.coverage(plan.ref) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}


def test_a_map_step_runs_one_attempt_per_element_and_gathers_them(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("m", TASK, map="a").build())
    run_id = rig.start(plan)
    a, _ = rig.claim(run_id, plan, "a")
    done = rig.engine.complete(a, '["x", "y"]', ['"x"', '"y"'])
    assert isinstance(done, o.Recorded)
    assert rig.count("m") == 2
    m0, claim0 = rig.claim(run_id, plan, "m", index=0)
    m1, claim1 = rig.claim(run_id, plan, "m", index=1)
    assert claim0.inputs.upstream_json == {"a": '"x"'}
    assert claim1.inputs.upstream_json == {"a": '"y"'}
    assert rig.engine.claim(again(m0), "w2") == o.Skip("RUNNING")
    first = rig.engine.complete(m1, '"Y"', [])
    assert isinstance(first, o.Recorded)
    assert first.ended is None
    assert rig.engine.complete(m1, '"Y2"', []) == o.Stale("token")
    last = rig.engine.complete(m0, '"X"', [])
    assert isinstance(last, o.Recorded)
    assert last.ended is RunState.SUCCEEDED
    assert rig.reads.status(run_id)["result"] == ["X", "Y"]
    assert rig.engine.claim(again(m0), "w2") == o.Stop("SUCCEEDED")


def test_a_lane_claims_the_next_step_for_its_caller(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan)
    a, _ = rig.claim(run_id, plan, "a")
    lane = Lane(rig.queue, "w1", deadline=time.monotonic() + 60)
    done = rig.engine.complete(a, '"a"', [], lane=lane)
    assert isinstance(done, o.Recorded)
    assert done.handoff is not None
    assert (done.handoff.step, done.handoff.index) == ("b", None)
    assert done.handoff.inputs.upstream_json == {"a": '"a"'}
    assert moves(done) == [
        ("a", "RUNNING", "SUCCEEDED"),
        ("b", "PENDING", "QUEUED"),
        ("b", "QUEUED", "RUNNING"),
    ]
    assert rig.count("b") == 0
    b = Attempt(run_id, plan.ref, "b", token=done.handoff.token)
    assert rig.fields(run_id)["b.tok"] == b.token
    last = rig.engine.complete(b, '"b"', [], lane=lane)
    assert isinstance(last, o.Recorded)
    assert last.ended is RunState.SUCCEEDED
    assert last.handoff is None


def test_a_lane_past_its_deadline_yields_the_next_step_as_a_message(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan)
    a, _ = rig.claim(run_id, plan, "a")
    lane = Lane(rig.queue, "w1", deadline=time.monotonic() - 1)
    done = rig.engine.complete(a, '"a"', [], lane=lane)
    assert isinstance(done, o.Recorded)
    assert done.handoff is None
    assert rig.count("b") == 1
    assert rig.state(run_id, "b") == "QUEUED"


def test_a_map_over_an_empty_list_succeeds_at_once(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("m", TASK, map="a").build())
    run_id = rig.start(plan)
    a, _ = rig.claim(run_id, plan, "a")
    done = rig.engine.complete(a, "[]", [])
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    assert moves(done)[1:] == [
        ("m", "PENDING", "QUEUED"),
        ("m", "QUEUED", "RUNNING"),
        ("m", "RUNNING", "SUCCEEDED"),
    ]
    assert rig.count("m") == 0
    assert rig.reads.status(run_id)["result"] == []


def test_a_failed_element_is_named_in_the_step_and_run_errors(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("m", TASK, map="a").build())
    run_id = rig.start(plan)
    a, _ = rig.claim(run_id, plan, "a")
    rig.engine.complete(a, "[1, 2, 3]", ["1", "2", "3"])
    m2, _ = rig.claim(run_id, plan, "m", index=2)
    failed = rig.engine.fail(m2, ERROR, retry_in=None)
    assert isinstance(failed, o.Recorded) and failed.failed
    doc = rig.reads.status(run_id)
    assert doc["steps"]["m"]["error"] == "RuntimeError: element 2: boom"
    assert doc["error"] == "step m failed: RuntimeError: element 2: boom"
