"""Recording attempts whose worker went silent (lost leases) as failures.

A worker killed mid-step (SIGKILL, out of memory, a hard time limit) records
nothing; its lease runs out instead, and the sweeper in any worker's main
process finds it here. The lost attempt is a failure like any other: the
same retry decision (``decide_retry``) says whether it is retried, and the
engine fences it with the attempt's token, so an attempt that did finish
after all is never overwritten.

A pool child that dies is noticed at once by its worker's main process
(``workers.deaths``), which makes the child's leases due now rather than
after a lease: the same sweep then records them, saying the process died.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from orchestrator.resilience import Failure, FailureKind, Retry, decide_retry, describe_failure
from orchestrator.spec import RetryPolicy
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from workers.loaded import LoadedWorkflow
from workers.runtime import StepRuntime

log = logging.getLogger("orchestrator.runtime")


def recover_lost(runtime: StepRuntime, died: Mapping[str, str] | None = None) -> int:
    """Record every attempt whose lease ran out; returns how many were recorded.

    ``died`` maps the token owner of a pool child known to have died
    (``token_owner``) to how it died: its attempts are reported as such
    rather than as a lease that ran out.
    """
    store = runtime.store
    recovered = 0
    for lost in store.upkeep.expired_leases():
        ref = store.reads.run_ref(lost.run_id)
        if ref is None:  # the run itself expired: nothing left to record
            store.upkeep.drop_lease(lost)
            continue
        attempt = replace(lost, ref=ref)
        why = (died or {}).get(attempt.token.rpartition(".")[2])
        if attempt.index == -1:
            _recover_compensation(runtime, attempt, why)
        else:
            _recover_step(runtime, attempt, why)
        recovered += 1
    return recovered


@dataclass(frozen=True)
class _Lost:
    """What the two recoveries share: the version, the policy, the count and the decision."""

    loaded: LoadedWorkflow
    policy: RetryPolicy
    count: int
    failure: Failure
    retry_in: float | None


def _assess(runtime: StepRuntime, attempt: Attempt, kind: FailureKind) -> _Lost:
    loaded = runtime.load(attempt.ref)
    policy = loaded.workflow.policy_for(attempt.step)
    count = runtime.store.reads.attempts_of(attempt)
    failure = Failure(kind, count, None)
    decision = decide_retry(policy, failure)
    retry_in = decision.delay if isinstance(decision, Retry) else None
    return _Lost(loaded, policy, count, failure, retry_in)


def _recover_step(runtime: StepRuntime, attempt: Attempt, died: str | None) -> None:
    lost = _assess(runtime, attempt, FailureKind.LOST)
    child_step = lost.loaded.workflow.steps[attempt.step].workflow is not None
    if child_step and runtime.children.recollect(lost.loaded, attempt, lost.count):
        return
    lease = runtime.store.upkeep.lease_seconds
    message = (
        f"attempt {lost.count} was lost: {died}"
        if died
        else describe_failure(lost.policy, lost.failure, lease=lease)
    )
    error = {"type": "WorkerLostError", "message": message, "attempt": lost.count}
    called = lost.loaded.workflow.steps[attempt.step].dependency is not None
    engine = runtime.engine
    outcome = engine.fail(attempt, error, retry_in=lost.retry_in, called=called)
    if isinstance(outcome, o.UseFallback):  # budget spent: the sweeper runs no user code
        outcome = engine.fail(attempt, error, retry_in=None, called=called)
    waits = lost.loaded.waits()
    runtime.report.noted(attempt, outcome.decisions, waits, _context(runtime, attempt))
    if isinstance(outcome, o.Recorded):  # a stale lease (outcome already recorded) says nothing
        log.warning("run %s step %s: %s", attempt.run_id, attempt.step, message)


def _recover_compensation(runtime: StepRuntime, attempt: Attempt, died: str | None) -> None:
    lost = _assess(runtime, attempt, FailureKind.COMPENSATION_LOST)
    message = describe_failure(lost.policy, lost.failure)
    if died:
        message = f"compensation attempt {lost.count} was lost: {died}"
    error = {"type": "WorkerLostError", "message": message, "attempt": lost.count}
    done = runtime.engine.undo_done(attempt, error, retry_in=lost.retry_in)
    waits = lost.loaded.waits()
    runtime.report.noted(attempt, done.decisions, waits, _context(runtime, attempt))


def report_expired_waits(runtime: StepRuntime, expired: list[tuple[str, str, o.Settled]]) -> None:
    """Tell the hooks about waits that timed out (the sweep recorded them already)."""
    if not runtime.report:
        return
    for run_id, _step, outcome in expired:
        ref = runtime.store.reads.run_ref(run_id)
        if ref is not None:
            waits = runtime.load(ref).waits()
            context = runtime.store.reads.context(run_id)
            runtime.report.decisions(run_id, ref, outcome.decisions, waits, context)


def report_deadlines(
    runtime: StepRuntime, expired: list[tuple[str, o.CancelRequested | o.Final | o.Gone]]
) -> None:
    """Tell the hooks about runs their deadline cancelled (the script recorded it already)."""
    if not runtime.report:
        return
    for run_id, outcome in expired:
        ref = runtime.store.reads.run_ref(run_id)
        if isinstance(outcome, o.CancelRequested) and ref is not None:
            context = runtime.store.reads.context(run_id)
            runtime.report.decisions(run_id, ref, outcome.decisions, context=context)


def _context(runtime: StepRuntime, attempt: Attempt) -> dict[str, str]:
    """The run's carried context, read only when a hook will hear of it."""
    return runtime.store.reads.context(attempt.run_id) if runtime.report else {}
