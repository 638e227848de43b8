"""Decisions the scripts return become the right hook events (pure: no Redis)."""

from __future__ import annotations

import json

from orchestrator import hooks as h
from orchestrator.reporting import Reporter
from orchestrator.store import outcomes as o


class Collect(h.Hooks):
    def __init__(self) -> None:
        self.events: list[h.RunEvent] = []

    def __getattribute__(self, name: str) -> object:
        if name.startswith("on_"):
            return object.__getattribute__(self, "events").append
        return object.__getattribute__(self, name)


def report(*decisions: o.Decision) -> list[h.RunEvent]:
    sink = Collect()
    waits = {"review": ("approval", 60.0)}
    Reporter(h.HookChain([sink])).decisions("r1", "wf:3", decisions, waits)
    return sink.events


IDENT = {"run_id": "r1", "workflow": "wf", "version": 3}


def test_breaker_and_budget_decisions() -> None:
    assert report(o.BreakerMoved("s", "llm", "open"), o.BudgetRefused("s", "llm")) == [
        h.BreakerChanged(**IDENT, step="s", dependency="llm", state="open"),
        h.BudgetDenied(**IDENT, step="s", dependency="llm"),
    ]


def test_only_a_terminal_run_move_is_a_finish() -> None:
    moves = (o.RunMoved("PENDING", "RUNNING"), o.RunMoved("RUNNING", "FAILED", "step x failed"))
    assert report(*moves) == [h.RunFinished(**IDENT, state="FAILED", error="step x failed")]


def test_waits_start_and_end_with_their_signal() -> None:
    events = report(
        o.StepMoved("review", "PENDING", "WAITING", signal="approval"),
        o.StepMoved("review", "WAITING", "SUCCEEDED", signal="approval"),
        o.StepMoved("review", "WAITING", "FAILED"),
        o.StepMoved("review", "WAITING", "SKIPPED"),
    )
    assert events == [
        h.WaitStarted(**IDENT, step="review", signal="approval", timeout=60.0),
        h.WaitEnded(**IDENT, step="review", signal="approval", outcome="signalled"),
        h.WaitEnded(**IDENT, step="review", signal="approval", outcome="timed_out"),
        h.WaitEnded(**IDENT, step="review", signal="approval", outcome="skipped"),
    ]


def test_retries_of_steps_and_of_map_elements() -> None:
    error = json.dumps({"type": "TimeoutError", "message": "slow", "attempt": 1})
    events = report(
        o.StepMoved("s", "RUNNING", "RETRYING", attempt=1, error=error, delay=0.5),
        o.StepMoved("m", None, None, index=7, error=error, delay=0.25),
        o.StepMoved("s", "RETRYING", "QUEUED"),
    )
    assert events == [
        h.RetryScheduled(
            **IDENT, step="s", index=None, attempt=1, delay=0.5, reason="TimeoutError"
        ),
        h.RetryScheduled(**IDENT, step="m", index=7, attempt=0, delay=0.25, reason="TimeoutError"),
    ]


def test_no_hooks_no_work() -> None:
    reporter = Reporter(h.HookChain())
    assert not reporter
    reporter.decisions("r1", "not-a-ref", [o.BreakerMoved("s", "llm", "open")])  # never parsed
