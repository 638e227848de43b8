"""Metric hooks with the real SDK and an in-memory reader: each instrument counts what it says."""

from __future__ import annotations

from orchestrator import hooks as h
from orchestrator.errors import HandoffError
from orchestrator.telemetry import names as n
from orchestrator.telemetry.metrics import SECONDS_BUCKETS
from tests.unit.telemetry_events import WF, World, base, finished, run_finished, started

AT = {n.WORKFLOW: WF, n.VERSION: 2}


def test_runs_are_counted_by_workflow_version_and_state() -> None:
    world = World()
    hook = world.metrics()
    hook.on_run_submitted(h.RunSubmitted(**base({}), key=None, created=True))
    hook.on_run_submitted(h.RunSubmitted(**base({}), key="k", created=False))
    for state in ("SUCCEEDED", "SUCCEEDED", "FAILED"):
        hook.on_run_finished(run_finished({}, state))
    assert [(a, p.value) for a, p in world.points(n.RUNS_SUBMITTED)] == [(AT, 1)]
    finished_by_state = {a[n.STATE]: p.value for a, p in world.points(n.RUNS_FINISHED)}
    assert finished_by_state == {"SUCCEEDED": 2, "FAILED": 1}


def test_attempts_retries_and_the_queue_delay_histogram() -> None:
    world = World()
    hook = world.metrics()
    hook.on_attempt_started(started({}, queue_delay=0.003))
    hook.on_attempt_started(started({}, queue_delay=None))
    hook.on_attempt_finished(finished({}, outcome=h.Outcome.RETRYING, duration=0.2))
    hook.on_retry_scheduled(
        h.RetryScheduled(
            **base({}), step="fetch", index=None, attempt=1, delay=1.0, reason="TimeoutError"
        )
    )
    hook.on_attempt_finished(finished({}, attempt=2))
    outcomes = {a[n.OUTCOME]: p.value for a, p in world.points(n.ATTEMPTS)}
    assert outcomes == {"retrying": 1, "succeeded": 1}
    ((retry_at, retries),) = world.points(n.RETRIES)
    assert retries.value == 1 and retry_at[n.REASON] == "TimeoutError"
    ((delay_at, delay),) = world.points(n.QUEUE_DELAY_HISTOGRAM)
    assert delay_at == {**AT, n.QUEUE: "orch"}
    assert delay.count == 1 and delay.sum == 0.003
    assert tuple(delay.explicit_bounds) == SECONDS_BUCKETS
    assert delay.bucket_counts[2] == 1  # (0.002, 0.004]


def test_handoffs_by_edge_and_validity() -> None:
    world = World()
    hook = world.metrics()
    hook.on_attempt_finished(finished({}, "store", upstreams=("embed", "fetch")))
    hook.on_attempt_finished(
        finished({}, "store", upstreams=("embed",), outcome=h.Outcome.FALLBACK)
    )
    bad = HandoffError("handoff embed → store: not a list", edge="embed → store")
    hook.on_attempt_finished(
        finished({}, "store", outcome=h.Outcome.FAILED, exception=bad, upstreams=("embed",))
    )
    hook.on_attempt_finished(  # failed in its own code: says nothing about its handoffs
        finished({}, "store", outcome=h.Outcome.FAILED, exception=ValueError("x"))
    )
    counts = {(a[n.EDGE], a[n.VALID]): p.value for a, p in world.points(n.HANDOFFS)}
    assert counts == {
        ("embed → store", True): 2,
        ("fetch → store", True): 1,
        ("embed → store", False): 1,
    }


def test_budget_denials_breaker_state_waits_and_compensations() -> None:
    world = World()
    hook = world.metrics()
    step = {**base({}), "step": "fetch"}
    hook.on_budget_denied(h.BudgetDenied(**step, dependency="llm"))
    for state in ("open", "half_open", "closed", "open"):
        hook.on_breaker_changed(h.BreakerChanged(**step, dependency="llm", state=state))
    hook.on_breaker_changed(h.BreakerChanged(**step, dependency="search", state="half_open"))
    hook.on_wait_ended(h.WaitEnded(**step, signal="ok", outcome="signalled", waited=2.0))
    hook.on_compensation_finished(
        h.CompensationFinished(**step, attempt=1, outcome="compensated", duration=0.1, error=None)
    )
    ((denied_at, denied),) = world.points(n.BUDGET_DENIALS)
    assert denied.value == 1 and denied_at[n.DEPENDENCY] == "llm"
    levels = {a[n.DEPENDENCY]: p.value for a, p in world.points(n.BREAKER)}
    assert levels == {"llm": 2, "search": 1}
    assert [(a[n.OUTCOME], p.value) for a, p in world.points(n.WAITS)] == [("signalled", 1)]
    assert [(a[n.OUTCOME], p.value) for a, p in world.points(n.COMPENSATIONS)] == [
        ("compensated", 1)
    ]
