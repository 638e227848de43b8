"""What an engine call answers with, by ``Observe`` level: hooks hear the same either way.

A worker whose hooks listen asks for ``Observe.EVENTS``: the scripts leave
out the plain step moves, which make no event. These tests drive one run
through a completion, a retry, a wait, a final failure and the run's end at
each level, and check that the reporter words the same events from what each
level answered, and that the completion's plain moves were left out.
"""

from __future__ import annotations

import dataclasses

from orchestrator import hooks as h
from orchestrator.reporting import Reporter
from orchestrator.store import Attempt, Observe, RunStore
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, moves
from tests.unit.test_reporting import Collect


def _store(rig: Rig, level: Observe) -> RunStore:
    return RunStore(rig.redis, rig.keys, run_ttl=60, max_payload=1 << 20, observe=level)


def _drive(rig: Rig, level: Observe) -> tuple[list[tuple[object, ...]], o.Recorded]:
    """One run: a completes, r is retried, g starts waiting, b fails for good (so the run
    fails). The events reported, without the run id; and a's plain completion."""
    store = _store(rig, level)
    wf = (
        rig.flow()
        .step("a", TASK)
        .step("r", TASK, after=["a"], retry={"max_attempts": 3})
        .step("g", after=["a"], wait_for="approval")
        .step("b", TASK, after=["a"])
        .build()
    )
    plan = rig.install(wf)
    sink = Collect()
    reporter = Reporter(h.HookChain([sink]))
    waits = {"g": ("approval", None)}

    def heard(run_id: str, outcome: o.Recording | o.Claim | o.Submitted) -> None:
        reporter.decisions(run_id, plan.ref, outcome.decisions, waits)

    submitted = store.engine.submit(plan, "{}", key=None)
    assert isinstance(submitted, o.Submitted)
    run_id = submitted.run_id
    heard(run_id, submitted)

    def claimed(step: str) -> Attempt:
        attempt = Attempt(run_id, plan.ref, step)
        claim = store.engine.claim(attempt, "w1")
        assert isinstance(claim, o.Run), claim
        heard(run_id, claim)
        return attempt

    plain = store.engine.complete(claimed("a"), "1", [])
    assert isinstance(plain, o.Recorded)
    heard(run_id, plain)
    heard(run_id, store.engine.fail(claimed("r"), ERROR, retry_in=30.0))
    heard(run_id, store.engine.fail(claimed("b"), ERROR, retry_in=None))
    words = [
        (type(e).__name__, *(v for k, v in _fields(e) if k not in ("run_id", "context")))
        for e in sink.events
    ]
    return words, plain


def _fields(event: h.RunEvent) -> list[tuple[str, object]]:
    return [(f.name, getattr(event, f.name)) for f in dataclasses.fields(event)]


def test_hooks_hear_the_same_events_at_either_level(rig: Rig) -> None:
    every, plain_all = _drive(rig, Observe.ALL)
    told, plain_told = _drive(rig, Observe.EVENTS)
    kinds = {word[0] for word in every}
    assert {"RetryScheduled", "WaitStarted", "RunFinished"} <= kinds, every
    assert told == every
    # a's completion moved a, queued r and b, and began g's wait: only the wait is told
    assert ("a", "RUNNING", "SUCCEEDED") in moves(plain_all)
    assert ("b", "PENDING", "QUEUED") in moves(plain_all)
    assert moves(plain_told) == [("g", "PENDING", "WAITING")]
    assert len(plain_told.decisions) == 1


def test_without_observers_no_decision_comes_back(rig: Rig) -> None:
    store = _store(rig, Observe.NOTHING)
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan)
    attempt = Attempt(run_id, plan.ref, "a")
    claim = store.engine.claim(attempt, "w1")
    assert isinstance(claim, o.Run)
    assert claim.inputs.context == {} and claim.inputs.queued_at is None
    done = store.engine.fail(attempt, ERROR, retry_in=None)
    assert isinstance(done, o.Recorded) and done.ended is not None
    assert done.decisions == ()
    assert rig.state(run_id) == "FAILED", "what was not told was still recorded"
