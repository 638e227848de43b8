"""Dependency admission at claim time: the circuit breaker, concurrency slots, rate tokens."""

from __future__ import annotations

from typing import Any

from orchestrator.compiler import Plan
from orchestrator.states import RunState
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, moves, of_type, until

BREAKER = {"llm": {"breaker": {"failure_rate": 0.5, "min_calls": 2, "open_for": 0.3}}}


def breaker_plan(rig: Rig, **step: Any) -> Plan:
    return rig.install(
        rig.flow(dependencies=BREAKER).step("call", TASK, dependency="llm", **step).build()
    )


def claim_call(rig: Rig, plan: Plan) -> tuple[Attempt, o.Run]:
    """Start a fresh run and claim its one step."""
    return rig.claim(rig.start(plan), plan, "call", dependency="llm")


def failed_call(rig: Rig, plan: Plan) -> o.Recording:
    attempt, claim = claim_call(rig, plan)
    assert claim.inputs.mode is o.Mode.TASK
    return rig.engine.fail(attempt, ERROR, retry_in=None, called=True)


def breaker_moves(outcome: o.Recording | o.Claim) -> list[str]:
    return [d.state for d in of_type(outcome, o.BreakerMoved)]


def breaker(rig: Rig) -> dict[str, str]:
    raw = rig.redis.hgetall(rig.keys.dep_breaker("llm"))
    return {k.decode(): v.decode() for k, v in raw.items()}


def open_breaker(rig: Rig, plan: Plan) -> None:
    assert breaker_moves(failed_call(rig, plan)) == []
    opened = failed_call(rig, plan)
    assert of_type(opened, o.BreakerMoved) == [o.BreakerMoved("call", "llm", "open")]
    assert breaker(rig)["state"] == "open"


def wait_out_the_open_spell(rig: Rig) -> None:
    until(lambda: rig.reads.now() > float(breaker(rig)["until"]), "the breaker's open spell")


def test_failed_calls_open_the_breaker_and_a_claim_then_fails_fast(rig: Rig) -> None:
    plan = breaker_plan(rig)
    open_breaker(rig, plan)
    attempt, claim = claim_call(rig, plan)
    assert claim.inputs.mode is o.Mode.OPEN
    assert moves(claim) == [("call", "QUEUED", "RUNNING")]
    failed = rig.engine.fail(attempt, ERROR, retry_in=None, called=False)
    assert isinstance(failed, o.Recorded)
    assert failed.ended is RunState.FAILED
    assert breaker_moves(failed) == []


def test_an_open_breaker_with_a_fallback_claims_in_fallback_mode(rig: Rig) -> None:
    plan = breaker_plan(rig, fallback="m:g")
    open_breaker(rig, plan)
    attempt, claim = claim_call(rig, plan)
    assert claim.inputs.mode is o.Mode.FALLBACK
    done = rig.engine.complete(attempt, '"cached"', [], how="fallback")
    assert isinstance(done, o.Recorded)
    assert done.ended is RunState.SUCCEEDED
    assert rig.fields(attempt.run_id)["call.fb"] == "1"
    assert breaker(rig)["state"] == "open"


def test_after_the_open_spell_one_probe_is_admitted_and_its_success_closes_it(rig: Rig) -> None:
    plan = breaker_plan(rig)
    open_breaker(rig, plan)
    wait_out_the_open_spell(rig)
    probe, claim = claim_call(rig, plan)
    assert claim.inputs.mode is o.Mode.TASK
    assert of_type(claim, o.BreakerMoved) == [o.BreakerMoved("call", "llm", "half_open")]
    assert breaker(rig)["probe"] == probe.token
    other, during = claim_call(rig, plan)
    assert during.inputs.mode is o.Mode.OPEN
    closed = rig.engine.complete(probe, '"answer"', [], how="call")
    assert isinstance(closed, o.Recorded)
    assert breaker_moves(closed) == ["closed"]
    assert breaker(rig) == {}
    _, after = claim_call(rig, plan)
    assert after.inputs.mode is o.Mode.TASK
    assert breaker_moves(after) == []
    assert isinstance(rig.engine.fail(other, ERROR, retry_in=None), o.Recorded)


def test_a_failed_probe_reopens_the_breaker(rig: Rig) -> None:
    plan = breaker_plan(rig)
    open_breaker(rig, plan)
    first_until = float(breaker(rig)["until"])
    wait_out_the_open_spell(rig)
    probe, claim = claim_call(rig, plan)
    assert breaker_moves(claim) == ["half_open"]
    reopened = rig.engine.fail(probe, ERROR, retry_in=None, called=True)
    assert isinstance(reopened, o.Recorded)
    assert of_type(reopened, o.BreakerMoved) == [o.BreakerMoved("call", "llm", "open")]
    state = breaker(rig)
    assert state["state"] == "open"
    assert float(state["until"]) > first_until
    _, next_claim = claim_call(rig, plan)
    assert next_claim.inputs.mode is o.Mode.OPEN


def test_a_probe_that_ends_without_a_call_lets_a_later_claim_probe(rig: Rig) -> None:
    plan = breaker_plan(rig)
    open_breaker(rig, plan)
    wait_out_the_open_spell(rig)
    probe, claim = claim_call(rig, plan)
    assert breaker_moves(claim) == ["half_open"]
    assert isinstance(rig.engine.fail(probe, ERROR, retry_in=None, called=False), o.Recorded)
    wait_out_the_open_spell(rig)
    _, later = claim_call(rig, plan)
    assert later.inputs.mode is o.Mode.TASK


def test_a_full_concurrency_limit_sends_the_claim_back_to_wait(rig: Rig) -> None:
    deps = {"llm": {"concurrency": 1}}
    plan = rig.install(rig.flow(dependencies=deps).step("call", TASK, dependency="llm").build())
    holder, _ = claim_call(rig, plan)
    waiter = Attempt(rig.start(plan), plan.ref, "call", dependency="llm")
    wait = rig.engine.claim(waiter, "w2")
    assert isinstance(wait, o.Wait)
    assert wait.why == "concurrency"
    assert wait.seconds > 0
    [note] = of_type(wait, o.AdmissionWait)
    assert (note.step, note.dependency, note.why) == ("call", "llm", "concurrency")
    assert rig.state(waiter.run_id, "call") == "QUEUED"
    assert [e["k"] for e in rig.delayed()] == ["admit"]
    assert isinstance(rig.engine.complete(holder, "1", [], how="call"), o.Recorded)
    until(rig.upkeep.promote_due, "the admission to come due")
    assert rig.count("call") == 3
    admitted = rig.engine.claim(waiter, "w2")
    assert isinstance(admitted, o.Run)
    assert admitted.inputs.attempt == 1


def test_a_spent_rate_limit_sends_the_claim_back_to_wait(rig: Rig) -> None:
    deps = {"llm": {"rate": "10/s", "burst": 1}}
    plan = rig.install(rig.flow(dependencies=deps).step("call", TASK, dependency="llm").build())
    claim_call(rig, plan)
    waiter = Attempt(rig.start(plan), plan.ref, "call", dependency="llm")
    wait = rig.engine.claim(waiter, "w2")
    assert isinstance(wait, o.Wait)
    assert wait.why == "rate"
    assert [(d.why, d.dependency) for d in of_type(wait, o.AdmissionWait)] == [("rate", "llm")]
    assert rig.fields(waiter.run_id)["call.rsv"] == "1"
    until(rig.upkeep.promote_due, "the admission to come due")
    admitted = rig.engine.claim(waiter, "w2")
    assert isinstance(admitted, o.Run)
    assert "call.rsv" not in rig.fields(waiter.run_id)
