"""The step runtime: what happens around every step a worker runs.

claim (atomic: may this attempt run? what are its inputs?) → bind inputs to
parameters through their annotations → call → record the outcome (atomic:
output, transitions, joins, successors) or the failure (retry later, or fail).
Whether a failure is retried is decided once, by
``orchestrator.resilience.decide_retry``; what the engine answered is a typed
outcome (``orchestrator.store.outcomes``) that the hooks hear about.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.exceptions import OutOfMemoryError

from orchestrator.compiler import compile_plan
from orchestrator.errors import (
    CircuitOpenError,
    HandoffError,
    NonRetryableError,
    OrchestratorError,
    RedisUnavailableError,
)
from orchestrator.hooks import HookChain
from orchestrator.messages import queue_list_key
from orchestrator.resilience import (
    Failure,
    FailureKind,
    Retry,
    decide_retry,
    describe_failure,
)
from orchestrator.states import StepState
from orchestrator.steps import StepContext, encode_output
from orchestrator.store import Attempt, Lane, RunStore
from orchestrator.store import outcomes as o
from workers.attempts import AttemptReport, Call, Executed, describe
from workers.cancellation import CancelWatch
from workers.children import ChildSteps
from workers.leases import LeaseKeeper
from workers.loaded import LoadedWorkflow

log = logging.getLogger("orchestrator.runtime")
T = TypeVar("T")

#: How long a worker keeps trying to reach Redis before it gives an attempt up
#: (its lease then expires and the step is retried once Redis is back).
REDIS_PATIENCE = 60.0


class StepRuntime:
    def __init__(
        self,
        store: RunStore,
        *,
        default_queue: str = "orch",
        runner_slice: float = 1.0,
        hooks: HookChain | None = None,
    ) -> None:
        self.store = store
        self.engine = store.engine
        self.default_queue = default_queue
        self.runner_slice = runner_slice
        self._loaded: dict[str, LoadedWorkflow] = {}
        self.report = AttemptReport(hooks or HookChain())
        self.leases = LeaseKeeper(store.upkeep)
        self.cancels = CancelWatch(store.reads, self._terminate)
        self.children = ChildSteps(self)

    def load(self, ref: str) -> LoadedWorkflow:
        loaded = self._loaded.get(ref)
        if loaded is None:
            name, _, version = ref.rpartition(":")
            wf = self.store.reads.workflow(name, int(version))
            loaded = LoadedWorkflow(wf, compile_plan(wf, default_queue=self.default_queue))
            self._loaded[ref] = loaded
        return loaded

    def forget_workflows(self) -> None:
        """Drop the versions loaded so far: Redis lost them, and new ones may take their refs."""
        self._loaded.clear()

    def execute(self, run_id: str, ref: str, step: str, index: int | None, worker: str) -> Executed:
        """Run one attempt of one step, then any its lane claims.

        The result says whether the message's own step failed for good, so
        that its Celery task is marked failed (what Flower shows).
        """
        if index == -1:
            return self.compensate(run_id, ref, step, worker)
        loaded = self.load(ref)
        attempt = self._attempt(loaded, run_id, step, index)
        claim = self._patiently(lambda: self.engine.claim(attempt, worker))
        lane = self._lane(loaded, step, worker)
        outcome = self._run(loaded, attempt, claim, worker, lane, by_lane=False)
        own = self._failure_of(outcome, run_id, step, index)
        while isinstance(outcome, o.Recorded) and outcome.handoff is not None:
            handoff = outcome.handoff
            attempt = self._attempt(loaded, run_id, handoff.step, handoff.index, handoff.token)
            claim = o.Run(handoff.inputs)
            outcome = self._run(loaded, attempt, claim, worker, lane, by_lane=True)
        return Executed(own or describe(outcome), failed=own is not None)

    def _failure_of(
        self, outcome: o.Claim | o.Recording, run_id: str, step: str, index: int | None
    ) -> str | None:
        """How the message's own step failed for good, or None when it did not."""
        if not isinstance(outcome, o.Recorded) or not outcome.failed:
            return None
        what = f"step {step!r}" + (f" element {index}" if index is not None else "")
        error = self.store.reads.step_error(run_id, step)
        return f"{what} failed for good: {error}" if error else f"{what} failed for good"

    def _attempt(
        self, loaded: LoadedWorkflow, run_id: str, step: str, index: int | None, token: str = ""
    ) -> Attempt:
        dependency = loaded.workflow.steps[step].dependency or ""
        ref = loaded.workflow.ref
        if token:
            return Attempt(run_id, ref, step, index, token=token, dependency=dependency)
        return Attempt(run_id, ref, step, index, dependency=dependency)

    def _lane(self, loaded: LoadedWorkflow, step: str, worker: str) -> Lane | None:
        """Go on with the run's next steps after this one, unless the task has a time limit."""
        plan = loaded.plan.steps[step]
        if self.runner_slice <= 0 or plan.timeout is not None:
            return None
        return Lane(queue_list_key(plan.queue), worker, time.monotonic() + self.runner_slice)

    def _run(
        self,
        loaded: LoadedWorkflow,
        attempt: Attempt,
        claim: o.Claim,
        worker: str,
        lane: Lane | None,
        *,
        by_lane: bool,
    ) -> o.Claim | o.Recording:
        """Run one claimed attempt (or evaluate its `when` gate first) and record it."""
        predicate_error: Exception | None = None
        if isinstance(claim, o.Run) and claim.inputs.mode is o.Mode.GATE:
            claim, predicate_error = self._gate(loaded, attempt, claim, worker)
        self.report.claimed(loaded.plan, attempt, claim, worker, by_lane, loaded.waits())
        if not isinstance(claim, o.Run):
            log.info("run %s step %s[%s] not run: %s", attempt.run_id, attempt.step, attempt.index,
                     describe(claim))  # fmt: skip
            return claim
        ctx = self._context(loaded, attempt, claim.inputs, worker)
        call = Call(loaded.workflow, loaded.plan, ctx, attempt, claim.inputs, lane, by_lane)
        self.report.started(call)
        with self.leases.held(attempt):
            if predicate_error is not None:
                error = NonRetryableError(f"`when` predicate failed: {predicate_error!r}")
                return self._record_failure(loaded, call, error, called=False)
            if claim.inputs.mode is o.Mode.OPEN:
                message = (
                    f"dependency {attempt.dependency!r} is failing: its circuit breaker is open"
                )
                return self._record_failure(loaded, call, CircuitOpenError(message), called=False)
            if claim.inputs.mode is o.Mode.FALLBACK:
                return self._run_fallback(loaded, call)
            if loaded.workflow.steps[attempt.step].workflow is not None:
                return self.children.run(loaded, call)
            try:
                with self.cancels.guarding(attempt, loaded.workflow.grace_for(attempt.step)):
                    output, items = self._call(loaded, call, "task")
            except Exception as exc:  # every failure is recorded; the worker stays up
                return self._record_failure(loaded, call, exc, called=bool(attempt.dependency))
        how = "call" if attempt.dependency else ""
        outcome = self._patiently(
            lambda: self.engine.complete(attempt, output, items, how=how, lane=lane)
        )
        self.report.finished(call, outcome, loaded.waits())
        return outcome

    def _context(
        self,
        loaded: LoadedWorkflow,
        attempt: Attempt,
        inputs: o.Inputs,
        worker: str,
        *,
        compensating: bool = False,
    ) -> StepContext:
        wf = loaded.workflow
        index = None if compensating else attempt.index
        return StepContext(
            attempt.run_id,
            wf.name,
            wf.version,
            attempt.step,
            inputs.attempt,
            index,
            worker,
            compensating,
            lambda: self.store.reads.is_cancelling(attempt.run_id),
        )

    def _gate(
        self, loaded: LoadedWorkflow, attempt: Attempt, claim: o.Run, worker: str
    ) -> tuple[o.Claim, Exception | None]:
        """Evaluate a step's `when` predicate: skip the step, or open its gate and claim it.

        A predicate that raises opens the gate too, so that the step fails with
        the predicate's error in plain sight instead of being silently skipped.
        """
        wf = loaded.workflow
        ctx = StepContext(attempt.run_id, wf.name, wf.version, attempt.step, 0, None, worker)
        error: Exception | None = None
        try:
            holds = bool(self._invoke(loaded, ctx, claim.inputs, "when"))
        except Exception as exc:
            holds, error = True, exc
        if not holds:
            skipped = self._patiently(lambda: self.engine.skip(attempt))
            self.report.noted(attempt, skipped.decisions, loaded.waits(), claim.inputs.context)
            return _not_run(skipped), None
        reclaimed = self._patiently(lambda: self.engine.claim(attempt, worker, gate_open=True))
        return reclaimed, error

    def _invoke(
        self, loaded: LoadedWorkflow, ctx: StepContext, inputs: o.Inputs, field_name: str
    ) -> Any:
        """Call the step's ``task``, ``fallback``, ``when`` or ``compensate`` with its inputs."""
        fn = loaded.function(ctx.step, field_name)
        upstream = {
            k: json.loads(v) if v is not None else None for k, v in inputs.upstream_json.items()
        }
        kwargs = fn.bind(ctx.step, upstream, json.loads(inputs.input_json), ctx)
        return fn.func(**kwargs)

    def _call(self, loaded: LoadedWorkflow, call: Call, field_name: str) -> tuple[str, list[str]]:
        ctx = call.ctx
        value = self._invoke(loaded, ctx, call.inputs, field_name)
        what = f"step {ctx.step!r}" + (f" element {ctx.index}" if ctx.index is not None else "")
        output = encode_output(value, limit=self.engine.max_payload, what=what)
        items: list[str] = []
        if loaded.plan.steps[ctx.step].mapped_over:
            decoded = json.loads(output)
            if not isinstance(decoded, list):
                raise NonRetryableError(
                    f"{what}: output must be a list because a step maps over it, got "
                    f"{type(decoded).__name__}"
                )
            items = [json.dumps(e, separators=(",", ":")) for e in decoded]
        return output, items

    def _run_fallback(
        self, loaded: LoadedWorkflow, call: Call, *, called: bool = False
    ) -> o.Recording:
        """Produce the step's output with its fallback, in this same attempt.

        ``called`` says the dependency was called and failed first: that failure
        counts for the breaker whatever the fallback makes of the step.
        """
        try:
            output, items = self._call(loaded, call, "fallback")
        except Exception as exc:
            error = _error(exc, call.ctx.attempt, f"fallback failed: {exc}")
            outcome = self._patiently(
                lambda: self.engine.fail(
                    call.attempt, error, retry_in=None, called=called, lane=call.lane
                )
            )
            self.report.finished(call, outcome, loaded.waits(), error=error, exception=exc)
            return outcome
        how = "fallback-after-call" if called else "fallback"
        outcome = self._patiently(
            lambda: self.engine.complete(call.attempt, output, items, how=how, lane=call.lane)
        )
        self.report.finished(call, outcome, loaded.waits(), fallback=True)
        return outcome

    def _record_failure(
        self, loaded: LoadedWorkflow, call: Call, exc: Exception, *, called: bool
    ) -> o.Recording:
        ctx = call.ctx
        policy = loaded.workflow.policy_for(ctx.step)
        has_fallback = loaded.workflow.steps[ctx.step].fallback is not None
        failure = Failure.of_step(exc, ctx.attempt, has_fallback=has_fallback)
        decision = decide_retry(policy, failure)
        if not isinstance(decision, Retry) and decision.fallback:
            return self._run_fallback(loaded, call, called=called)
        if not isinstance(exc, OrchestratorError):
            log.warning(
                "run %s step %s attempt %d failed: %r", ctx.run_id, ctx.step, ctx.attempt, exc
            )
        edge = exc.edge if isinstance(exc, HandoffError) else ""
        error = _error(exc, ctx.attempt, describe_failure(policy, failure))
        retry_in = decision.delay if isinstance(decision, Retry) else None
        outcome = self._patiently(
            lambda: self.engine.fail(
                call.attempt, error, retry_in=retry_in, edge=edge, called=called, lane=call.lane
            )
        )
        if isinstance(outcome, o.UseFallback):  # the retry budget said no; the fallback may answer
            self.report.noted(call.attempt, outcome.decisions, loaded.waits(), call.inputs.context)
            return self._run_fallback(loaded, call, called=called)
        self.report.finished(call, outcome, loaded.waits(), error=error, exception=exc)
        return outcome

    def compensate(self, run_id: str, ref: str, step: str, worker: str) -> Executed:
        """Run one attempt of a step's compensation (saga): undo what it did."""
        loaded = self.load(ref)
        attempt = Attempt(run_id, ref, step, -1)
        claim = self._patiently(lambda: self.engine.undo_claim(attempt, worker))
        self.report.noted(attempt, claim.decisions, loaded.waits())
        if not isinstance(claim, o.Run):
            log.info("run %s compensation of %s not run: %s", run_id, step, describe(claim))
            return Executed(describe(claim))
        ctx = self._context(loaded, attempt, claim.inputs, worker, compensating=True)
        self.report.compensation_started(attempt, loaded.plan, ctx, claim.inputs)
        started = time.monotonic()
        with self.leases.held(attempt):
            if loaded.workflow.steps[step].workflow is not None:
                undone, error = self.children.compensate(attempt)
                if undone not in ("done", "failed"):  # its children are still compensating
                    return Executed(f"compensation of step {step!r}: children {undone}")
                retry_in: float | None = None
            else:
                error, retry_in = self._undo(loaded, ctx, claim.inputs)
        done = self._patiently(lambda: self.engine.undo_done(attempt, error, retry_in=retry_in))
        self.report.compensated(
            attempt, loaded.plan, ctx, claim.inputs, done, time.monotonic() - started, error
        )
        gave_up = isinstance(done, o.UndoRecorded) and done.outcome is o.UndoOutcome.FAILED
        if gave_up and error is not None:
            why = f"compensation of step {step!r} failed for good: {error['type']}: "
            return Executed(why + str(error["message"]), failed=True)
        return Executed(describe(done))

    def _undo(
        self, loaded: LoadedWorkflow, ctx: StepContext, inputs: o.Inputs
    ) -> tuple[dict[str, Any] | None, float | None]:
        """Run a step's compensation: (None, None), or its error and retry delay."""
        try:
            self._invoke(loaded, ctx, inputs, "compensate")
        except Exception as exc:
            failure = Failure(FailureKind.COMPENSATION, inputs.attempt, exc)
            policy = loaded.workflow.policy_for(ctx.step)
            decision = decide_retry(policy, failure)
            retry_in = decision.delay if isinstance(decision, Retry) else None
            return _error(exc, inputs.attempt, describe_failure(policy, failure)), retry_in
        return None, None

    def _terminate(self, attempt: Attempt, after: float) -> bool:
        """Record a body that ignored its interrupt as failed; False when it has just ended."""
        error = {
            "type": "StepCancelled",
            "message": f"terminated: still running {after:g}s after its run was cancelled",
            "attempt": self.store.reads.attempts_of(attempt),
        }
        return isinstance(self.engine.fail(attempt, error, retry_in=None), o.Recorded)

    def _patiently(self, call: Callable[[], T]) -> T:
        """Retry a Redis call through a short outage or a full Redis (scripts are safe to
        repeat, and one refused for want of memory wrote nothing)."""
        deadline = time.monotonic() + REDIS_PATIENCE
        pause = 0.1
        while True:
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError, OutOfMemoryError) as exc:
                if time.monotonic() > deadline:
                    raise RedisUnavailableError(f"Redis unreachable: {exc}") from None
                if isinstance(exc, OutOfMemoryError) and pause == 0.1:
                    log.warning("Redis is out of memory: waiting for it to free some (%s)", exc)
                time.sleep(pause)
                pause = min(2.0, pause * 2)


def _not_run(skipped: o.Settled) -> o.Claim:
    """A gate that closed: the step was skipped (or the run stopped meanwhile)."""
    if isinstance(skipped, o.Stop | o.Gone):
        return skipped
    return o.Skip(StepState.SKIPPED if isinstance(skipped, o.Recorded) else skipped.why)


def _error(exc: BaseException, attempt: int, message: str) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": message, "attempt": attempt}
