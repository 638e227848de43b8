"""Recording attempts whose worker went silent (lost leases) as failures.

A worker killed mid-step (SIGKILL, out of memory, a hard time limit) records
nothing; its lease runs out instead, and the sweeper in any worker's main
process finds it here. The lost attempt is a failure like any other: the
same retry decision (``decide_retry``) says whether it is retried, and the
engine fences it with the attempt's token, so an attempt that did finish
after all is never overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from orchestrator.resilience import Failure, FailureKind, Retry, decide_retry, describe_failure
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from workers.runtime import StepRuntime

log = logging.getLogger("orchestrator.runtime")


def recover_lost(runtime: StepRuntime) -> int:
    """Record every attempt whose lease ran out; returns how many were recorded."""
    store = runtime.store
    recovered = 0
    for lost in store.upkeep.expired_leases():
        ref = store.reads.run_ref(lost.run_id)
        if ref is None:  # the run itself expired: nothing left to record
            store.upkeep.drop_lease(lost)
            continue
        attempt = replace(lost, ref=ref)
        if attempt.index == -1:
            _recover_compensation(runtime, attempt)
        else:
            _recover_step(runtime, attempt)
        recovered += 1
    return recovered


def _recover_step(runtime: StepRuntime, attempt: Attempt) -> None:
    loaded = runtime.load(attempt.ref)
    policy = loaded.workflow.policy_for(attempt.step)
    count = runtime.store.reads.attempts_of(attempt)
    child_step = loaded.workflow.steps[attempt.step].workflow is not None
    if child_step and runtime.children.recollect(loaded, attempt, count):
        return
    failure = Failure(FailureKind.LOST, count, None)
    decision = decide_retry(policy, failure)
    retry_in = decision.delay if isinstance(decision, Retry) else None
    lease = runtime.store.upkeep.lease_seconds
    error = {
        "type": "WorkerLostError",
        "message": describe_failure(policy, failure, lease=lease),
        "attempt": count,
    }
    called = loaded.workflow.steps[attempt.step].dependency is not None
    engine = runtime.engine
    outcome = engine.fail(attempt, error, retry_in=retry_in, called=called)
    if isinstance(outcome, o.UseFallback):  # budget spent: the sweeper runs no user code
        outcome = engine.fail(attempt, error, retry_in=None, called=called)
    runtime.report.noted(attempt, outcome.decisions, loaded.waits(), _context(runtime, attempt))
    if isinstance(outcome, o.Recorded):  # a stale lease (outcome already recorded) says nothing
        log.warning("run %s step %s: %s", attempt.run_id, attempt.step, error["message"])


def _recover_compensation(runtime: StepRuntime, attempt: Attempt) -> None:
    loaded = runtime.load(attempt.ref)
    policy = loaded.workflow.policy_for(attempt.step)
    count = runtime.store.reads.attempts_of(attempt)
    failure = Failure(FailureKind.COMPENSATION_LOST, count, None)
    decision = decide_retry(policy, failure)
    retry_in = decision.delay if isinstance(decision, Retry) else None
    message = describe_failure(policy, failure)
    error = {"type": "WorkerLostError", "message": message, "attempt": count}
    done = runtime.engine.undo_done(attempt, error, retry_in=retry_in)
    runtime.report.noted(attempt, done.decisions, loaded.waits(), _context(runtime, attempt))


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


def _context(runtime: StepRuntime, attempt: Attempt) -> dict[str, str]:
    """The run's carried context, read only when a hook will hear of it."""
    return runtime.store.reads.context(attempt.run_id) if runtime.report else {}
