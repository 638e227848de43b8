"""One attempt in progress, and what the hooks hear about it.

``AttemptReport`` words a worker's attempts as hook events: the claim (with
the engine's admission decision), the start (with its queue delay), the end
(outcome and duration), and every decision the recording script made on the
way. It is the same for a step a message started and one a runner lane ran.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import hooks as h
from orchestrator.compiler import Plan
from orchestrator.reporting import Reporter
from orchestrator.spec import Workflow
from orchestrator.steps import StepContext
from orchestrator.store import Attempt, Lane
from orchestrator.store import outcomes as o

Waits = dict[str, tuple[str, float | None]]

_ADMISSION = {
    o.Mode.TASK: h.Admission.RUN,
    o.Mode.FALLBACK: h.Admission.FALLBACK,
    o.Mode.OPEN: h.Admission.BREAKER_OPEN,
}


@dataclass(frozen=True)
class Call:
    """One attempt in progress: where it runs, what it was given, how it runs."""

    workflow: Workflow
    plan: Plan
    ctx: StepContext
    attempt: Attempt
    inputs: o.Inputs
    lane: Lane | None = None
    by_lane: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Executed:
    """What one Celery message did: a word for logs, and whether its own step failed for good."""

    summary: str
    failed: bool = False


def describe(outcome: object) -> str:
    """A short word on an engine outcome, for logs and the Celery task's result."""
    if isinstance(outcome, o.Recorded):
        word = "failed for good" if outcome.failed else "recorded"
        return f"{word}: run {outcome.ended}" if outcome.ended else word
    if isinstance(outcome, o.Wait):
        return f"wait: {outcome.why} {outcome.seconds:.3f}s"
    for kind, attr in ((o.Stale, "why"), (o.Skip, "state"), (o.Stop, "state")):
        if isinstance(outcome, kind):
            return f"{kind.__name__.lower()}: {getattr(outcome, attr)}"
    return type(outcome).__name__.lower()


class AttemptReport(Reporter):
    """The hook events of a worker's attempts.

    Each step of a chain passes through here several times, so an event no
    hook receives is not built, and a reply with no decisions (a plain step,
    with ``Observe.EVENTS``) makes none.
    """

    def __init__(self, chain: h.HookChain) -> None:
        super().__init__(chain)
        self._claims = chain.wants(h.StepClaimed.hook)
        self._starts = chain.wants(h.AttemptStarted.hook)
        self._ends = chain.wants(h.AttemptFinished.hook)

    def claimed(
        self, plan: Plan, attempt: Attempt, claim: o.Claim, worker: str, by_lane: bool, waits: Waits
    ) -> None:
        self.noted(attempt, claim.decisions, waits, _context_of(claim))
        if not self._claims:
            return
        admission, wait, number = _admission(claim)
        if admission is None:
            return
        name, version = plan.workflow, plan.version
        self.chain.emit(
            h.StepClaimed(
                run_id=attempt.run_id,
                workflow=name,
                version=version,
                context=_context_of(claim),
                step=attempt.step,
                index=attempt.index,
                attempt=number,
                worker=worker,
                lane=by_lane,
                dependency=attempt.dependency,
                admission=admission,
                wait=wait,
            )
        )

    def started(self, call: Call) -> None:
        if not self._starts:
            return
        self.chain.emit(
            h.AttemptStarted(
                **_identity(call),
                queue=call.plan.steps[call.ctx.step].queue,
                queue_delay=call.inputs.queue_delay,
            )
        )

    def finished(
        self,
        call: Call,
        outcome: o.Recording,
        waits: Waits,
        *,
        error: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        fallback: bool = False,
    ) -> None:
        if self._ends:
            self._finished(call, outcome, error, exception, fallback)
        # after the attempt's end: the run's end may be among them
        self.noted(call.attempt, outcome.decisions, waits, call.inputs.context)

    def _finished(
        self,
        call: Call,
        outcome: o.Recording,
        error: dict[str, Any] | None,
        exception: BaseException | None,
        fallback: bool,
    ) -> None:
        plan = call.plan.steps[call.ctx.step]
        self.chain.emit(
            h.AttemptFinished(
                **_identity(call),
                queue=plan.queue,
                outcome=_outcome(outcome, failed=error is not None, fallback=fallback),
                duration=time.monotonic() - call.started,
                queue_delay=call.inputs.queue_delay,
                error=None if error is None else f"{error['type']}: {error['message']}",
                exception=exception,
                retry_delay=outcome.retry_in if isinstance(outcome, o.Recorded) else None,
                breaker=_breaker(call, outcome),
                upstreams=plan.upstreams,
            )
        )

    def compensation_started(
        self, attempt: Attempt, plan: Plan, ctx: StepContext, inputs: o.Inputs
    ) -> None:
        if self.chain:
            self.emit(
                h.CompensationStarted(
                    run_id=attempt.run_id,
                    workflow=plan.workflow,
                    version=plan.version,
                    context=inputs.context,
                    step=attempt.step,
                    attempt=ctx.attempt,
                    worker=ctx.worker,
                )
            )

    def compensated(
        self,
        attempt: Attempt,
        plan: Plan,
        ctx: StepContext,
        inputs: o.Inputs,
        done: o.UndoRecording,
        duration: float,
        error: dict[str, Any] | None,
    ) -> None:
        if not self.chain:
            return
        outcome = done.outcome.value if isinstance(done, o.UndoRecorded) else "stale"
        self.emit(
            h.CompensationFinished(
                run_id=attempt.run_id,
                workflow=plan.workflow,
                version=plan.version,
                context=inputs.context,
                step=attempt.step,
                attempt=ctx.attempt,
                outcome=outcome,
                duration=duration,
                error=None if error is None else f"{error['type']}: {error['message']}",
            )
        )
        self.noted(attempt, done.decisions, {}, inputs.context)

    def noted(
        self,
        attempt: Attempt,
        found: tuple[o.Decision, ...],
        waits: Waits,
        context: Mapping[str, str] | None = None,
    ) -> None:
        """Report the decisions a script made about ``attempt``'s run."""
        if found:
            self.decisions(attempt.run_id, attempt.ref, found, waits, context)


def _context_of(claim: o.Claim) -> Mapping[str, str]:
    return claim.inputs.context if isinstance(claim, o.Run) else {}


def _identity(call: Call) -> dict[str, Any]:
    return {
        "run_id": call.attempt.run_id,
        "workflow": call.workflow.name,
        "version": call.workflow.version,
        "context": call.inputs.context,
        "step": call.ctx.step,
        "index": call.ctx.index,
        "attempt": call.ctx.attempt,
        "worker": call.ctx.worker,
        "lane": call.by_lane,
        "dependency": call.attempt.dependency,
    }


def _breaker(call: Call, outcome: o.Recording) -> str | None:
    """The breaker state the attempt met (open) or left (what its outcome moved it to)."""
    if call.inputs.mode in (o.Mode.OPEN, o.Mode.FALLBACK):
        return h.BreakerState.OPEN
    moved = [
        d.state
        for d in outcome.decisions
        if isinstance(d, o.BreakerMoved) and d.dependency == call.attempt.dependency
    ]
    return moved[-1] if moved else None


def _admission(claim: o.Claim) -> tuple[h.Admission | None, float, int]:
    if isinstance(claim, o.Run):
        return _ADMISSION.get(claim.inputs.mode), 0.0, claim.inputs.attempt
    if isinstance(claim, o.Wait):
        why = h.Admission.WAIT_RATE if claim.why == "rate" else h.Admission.WAIT_CONCURRENCY
        return why, claim.seconds, 0
    if isinstance(claim, o.Skip):
        return h.Admission.SKIPPED, 0.0, 0
    if isinstance(claim, o.Stop | o.Gone):
        return h.Admission.STOPPED, 0.0, 0
    return None, 0.0, 0  # a gated approval began waiting: its wait event says so


def _outcome(outcome: o.Recording, *, failed: bool, fallback: bool) -> h.Outcome:
    if not isinstance(outcome, o.Recorded):
        return h.Outcome.STALE
    if failed:
        return h.Outcome.RETRYING if outcome.retry_in is not None else h.Outcome.FAILED
    return h.Outcome.FALLBACK if fallback else h.Outcome.SUCCEEDED
