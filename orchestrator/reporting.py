"""Turning the engine's typed outcomes into hook events.

The scripts say what they decided (``store.outcomes``: a breaker opened, a
retry was scheduled, a join fired, the run ended); this module is the one
translation from those decisions to the public events of ``hooks``, so the
producer and every worker report the same decision the same way. With no
hook installed every method returns at once: nothing is built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator import hooks as h
from orchestrator.states import RUN_TERMINAL, StepState
from orchestrator.store import outcomes as o

_WAIT_ENDS = {
    StepState.SUCCEEDED: h.WaitOutcome.SIGNALLED,
    StepState.FAILED: h.WaitOutcome.TIMED_OUT,
    StepState.SKIPPED: h.WaitOutcome.SKIPPED,
    StepState.RUNNING: h.WaitOutcome.CHILD_ENDED,  # an attempt now records the child's end
}
_TERMINAL = {s.value for s in RUN_TERMINAL}


def split_ref(ref: str) -> tuple[str, int]:
    name, _, version = ref.rpartition(":")
    return name, int(version)


class Reporter:
    """Emits hook events for one process's engine calls."""

    def __init__(self, chain: h.HookChain) -> None:
        self.chain = chain

    def __bool__(self) -> bool:
        return bool(self.chain)

    def emit(self, event: h.RunEvent) -> None:
        if self.chain:
            self.chain.emit(event)

    def decisions(
        self,
        run_id: str,
        ref: str,
        found: Sequence[o.Decision],
        waits: Mapping[str, tuple[str, float | None]] | None = None,
        context: Mapping[str, str] | None = None,
    ) -> None:
        """Report what a script decided; ``waits`` gives each wait_for step's signal and timeout."""
        if not self.chain or not found:
            return
        name, version = split_ref(ref)
        at = _Run(run_id, name, version, waits or {}, context or {})
        for d in found:
            event = at.event_of(d)
            if event is not None:
                self.chain.emit(event)


@dataclass(frozen=True)
class _Run:
    """The run a batch of decisions belongs to, and how to word each as an event."""

    run_id: str
    workflow: str
    version: int
    waits: Mapping[str, tuple[str, float | None]]
    context: Mapping[str, str]

    def event_of(self, d: o.Decision) -> h.RunEvent | None:
        r, w, v, c = self.run_id, self.workflow, self.version, self.context
        if isinstance(d, o.RunMoved):
            if d.dst not in _TERMINAL:
                return None
            return h.RunFinished(
                run_id=r, workflow=w, version=v, context=c, state=d.dst, error=d.error
            )
        if isinstance(d, o.BreakerMoved):
            return h.BreakerChanged(
                run_id=r,
                workflow=w,
                version=v,
                context=c,
                step=d.step,
                dependency=d.dependency,
                state=d.state,
            )
        if isinstance(d, o.BudgetRefused):
            return h.BudgetDenied(
                run_id=r, workflow=w, version=v, context=c, step=d.step, dependency=d.dependency
            )
        if isinstance(d, o.StepMoved):
            return self._step_event(d)
        return None

    def _step_event(self, d: o.StepMoved) -> h.RunEvent | None:
        r, w, v, c, s = self.run_id, self.workflow, self.version, self.context, d.step
        signal, timeout = self.waits.get(s, ("", None))
        if d.dst == StepState.WAITING:
            return h.WaitStarted(
                run_id=r,
                workflow=w,
                version=v,
                context=c,
                step=s,
                signal=d.signal or signal,
                timeout=timeout,
            )
        if d.src == StepState.WAITING and d.dst is not None:
            outcome = h.WaitOutcome.WOKE if d.reason == "woke" else _WAIT_ENDS[StepState(d.dst)]
            return h.WaitEnded(
                run_id=r,
                workflow=w,
                version=v,
                context=c,
                step=s,
                signal=d.signal or signal,
                outcome=outcome,
                waited=d.waited,
            )
        if d.delay is not None and d.dst in (StepState.RETRYING, None):
            return h.RetryScheduled(
                run_id=r,
                workflow=w,
                version=v,
                context=c,
                step=s,
                index=d.index,
                attempt=d.attempt or 0,
                delay=d.delay,
                reason=_error_type(d.error),
            )
        return None


def _error_type(error: str | None) -> str:
    """The exception type of a recorded error JSON ({type, message, attempt})."""
    if not error:
        return ""
    try:
        return str(json.loads(error).get("type", ""))
    except ValueError:
        return ""
