"""The step runtime: what happens around every step a worker runs.

claim (atomic: may this attempt run? what are its inputs?) → bind inputs to
parameters through their annotations → call → record the outcome (atomic:
output, transitions, joins, successors) or the failure (retry later, or fail).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import redis

from orchestrator.compiler import Plan, compile_plan
from orchestrator.errors import (
    CircuitOpenError,
    HandoffError,
    NonRetryableError,
    OrchestratorError,
    RedisUnavailableError,
    StepCancelled,
)
from orchestrator.messages import queue_list_key
from orchestrator.resilience import backoff_delay, is_retryable
from orchestrator.spec import RetryPolicy, Workflow
from orchestrator.steps import StepContext, StepFunction, encode_output, import_task
from orchestrator.store import Attempt, Claim, Runner, RunStore
from workers.cancellation import CancelWatch
from workers.leases import LeaseKeeper

log = logging.getLogger("orchestrator.runtime")
T = TypeVar("T")

#: How long a worker keeps trying to reach Redis before it gives an attempt up
#: (its lease then expires and the step is retried once Redis is back).
REDIS_PATIENCE = 60.0


@dataclass
class LoadedWorkflow:
    """A workflow version as a worker needs it: compiled once, functions imported once."""

    workflow: Workflow
    plan: Plan
    functions: dict[tuple[str, str], StepFunction] = field(default_factory=dict)

    def function(self, step: str, field_name: str = "task") -> StepFunction:
        """The step's ``task`` (or ``fallback``) function, imported on first use."""
        fn = self.functions.get((step, field_name))
        if fn is None:
            path = getattr(self.workflow.steps[step], field_name)
            if path is None:
                raise NonRetryableError(f"step {step!r} has no {field_name} to run")
            where = f"step {step!r}, field {field_name!r}"
            fn = StepFunction.wrap(import_task(path, where=where))
            self.functions[(step, field_name)] = fn
        return fn


@dataclass(frozen=True)
class Call:
    """One attempt in progress: where it runs, what it was given, how it runs."""

    loaded: LoadedWorkflow
    ctx: StepContext
    attempt: Attempt
    claim: Claim
    runner: Runner | None = None

    @property
    def has_fallback(self) -> bool:
        return self.loaded.workflow.steps[self.ctx.step].fallback is not None


class StepRuntime:
    def __init__(
        self, store: RunStore, *, default_queue: str = "orch", runner_slice: float = 1.0
    ) -> None:
        self.store = store
        self.default_queue = default_queue
        self.runner_slice = runner_slice
        self._loaded: dict[str, LoadedWorkflow] = {}
        self.leases = LeaseKeeper(store)
        self.cancels = CancelWatch(store, self._terminate)

    def load(self, ref: str) -> LoadedWorkflow:
        loaded = self._loaded.get(ref)
        if loaded is None:
            name, _, version = ref.rpartition(":")
            wf = self.store.workflow(name, int(version))
            loaded = LoadedWorkflow(wf, compile_plan(wf, default_queue=self.default_queue))
            self._loaded[ref] = loaded
        return loaded

    def execute(self, run_id: str, ref: str, step: str, index: int | None, worker: str) -> str:
        """Run one attempt of one step; returns what was recorded (for logs and tests)."""
        if index == -1:
            return self.compensate(run_id, ref, step, worker)
        loaded = self.load(ref)
        attempt = self._attempt(loaded, run_id, step, index)
        claim = self._patiently(lambda: self.store.claim(attempt, worker))
        runner = self._runner(loaded, step, worker)
        outcome = self._run(loaded, attempt, claim, worker, runner)
        while runner is not None and runner.handoff is not None:
            handoff, runner.handoff = runner.handoff, None
            attempt = self._attempt(loaded, run_id, handoff.step, handoff.index, handoff.token)
            outcome = self._run(loaded, attempt, handoff.claim, worker, runner)
        return outcome

    def _attempt(
        self, loaded: LoadedWorkflow, run_id: str, step: str, index: int | None, token: str = ""
    ) -> Attempt:
        dependency = loaded.workflow.steps[step].dependency or ""
        attempt = Attempt(run_id, loaded.workflow.ref, step, index, dependency=dependency)
        return replace(attempt, token=token) if token else attempt

    def _runner(self, loaded: LoadedWorkflow, step: str, worker: str) -> Runner | None:
        """Go on with the run's next steps after this one, unless the task has a time limit."""
        plan = loaded.plan.steps[step]
        if self.runner_slice <= 0 or plan.timeout is not None:
            return None
        return Runner(queue_list_key(plan.queue), worker, time.monotonic() + self.runner_slice)

    def _run(
        self,
        loaded: LoadedWorkflow,
        attempt: Attempt,
        claim: Claim | str,
        worker: str,
        runner: Runner | None,
    ) -> str:
        """Run one claimed attempt (or evaluate its `when` gate first) and record it."""
        run_id, step, index = attempt.run_id, attempt.step, attempt.index
        dependency = attempt.dependency
        predicate_error: Exception | None = None
        if isinstance(claim, Claim) and claim.mode == "gate":
            claim, predicate_error = self._gate(loaded, attempt, claim, worker)
        if not isinstance(claim, Claim):
            log.info("run %s step %s[%s] not run: %s", run_id, step, index, claim)
            return claim
        ctx = self._context(loaded, attempt, claim, worker)
        call = Call(loaded, ctx, attempt, claim, runner)
        with self.leases.held(attempt):
            if predicate_error is not None:
                error = NonRetryableError(f"`when` predicate failed: {predicate_error!r}")
                return self._record_failure(call, error, called=False)
            if claim.mode == "open":
                message = f"dependency {dependency!r} is failing: its circuit breaker is open"
                return self._record_failure(call, CircuitOpenError(message), called=False)
            if claim.mode == "fallback":
                return self._run_fallback(call)
            try:
                with self.cancels.guarding(attempt, loaded.workflow.grace_for(step)):
                    output, items = self._call(call, "task")
            except Exception as exc:  # every failure is recorded; the worker stays up
                return self._record_failure(call, exc, called=bool(dependency))
        how = "call" if dependency else ""
        return self._patiently(
            lambda: self.store.complete(attempt, output, items, how=how, runner=runner)
        )

    def compensate(self, run_id: str, ref: str, step: str, worker: str) -> str:
        """Run one attempt of a step's compensation (saga): undo what it did."""
        loaded = self.load(ref)
        attempt = Attempt(run_id, ref, step, -1)
        claim = self._patiently(lambda: self.store.undo_claim(attempt, worker))
        if not isinstance(claim, Claim):
            log.info("run %s compensation of %s not run: %s", run_id, step, claim)
            return claim
        ctx = self._context(loaded, attempt, claim, worker, compensating=True)
        with self.leases.held(attempt):
            try:
                self._invoke(Call(loaded, ctx, attempt, claim), "compensate")
            except Exception as exc:
                policy = loaded.workflow.policy_for(step)
                retry_in = None
                if is_retryable(exc, policy) and claim.attempt < policy.max_attempts:
                    retry_in = backoff_delay(policy, claim.attempt, random.random)
                error = _error(exc, claim.attempt, str(exc))
                return self._patiently(
                    lambda: self.store.undo_done(attempt, error, retry_in=retry_in)
                )
        return self._patiently(lambda: self.store.undo_done(attempt))

    def _context(
        self,
        loaded: LoadedWorkflow,
        attempt: Attempt,
        claim: Claim,
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
            claim.attempt,
            index,
            worker,
            compensating,
            lambda: self.store.is_cancelling(attempt.run_id),
        )

    def _gate(
        self, loaded: LoadedWorkflow, attempt: Attempt, claim: Claim, worker: str
    ) -> tuple[Claim | str, Exception | None]:
        """Evaluate a step's `when` predicate: skip the step, or open its gate and claim it.

        A predicate that raises opens the gate too, so that the step fails with
        the predicate's error in plain sight instead of being silently skipped.
        """
        wf = loaded.workflow
        ctx = StepContext(attempt.run_id, wf.name, wf.version, attempt.step, 0, None, worker)
        error: Exception | None = None
        try:
            holds = bool(self._invoke(Call(loaded, ctx, attempt, claim), "when"))
        except Exception as exc:
            holds, error = True, exc
        if not holds:
            return self._patiently(lambda: self.store.skip(attempt)), None
        return self._patiently(lambda: self.store.claim(attempt, worker, gate_open=True)), error

    def _invoke(self, call: Call, field_name: str) -> Any:
        """Call the step's ``task``, ``fallback`` or ``when`` with its bound inputs."""
        ctx, claim = call.ctx, call.claim
        fn = call.loaded.function(ctx.step, field_name)
        upstream = {
            k: json.loads(v) if v is not None else None for k, v in claim.upstream_json.items()
        }
        kwargs = fn.bind(ctx.step, upstream, json.loads(claim.input_json), ctx)
        return fn.func(**kwargs)

    def _call(self, call: Call, field_name: str) -> tuple[str, list[str]]:
        ctx = call.ctx
        value = self._invoke(call, field_name)
        what = f"step {ctx.step!r}" + (f" element {ctx.index}" if ctx.index is not None else "")
        output = encode_output(value, limit=self.store.max_payload, what=what)
        items: list[str] = []
        if call.loaded.plan.steps[ctx.step].mapped_over:
            decoded = json.loads(output)
            if not isinstance(decoded, list):
                raise NonRetryableError(
                    f"{what}: output must be a list because a step maps over it, got "
                    f"{type(decoded).__name__}"
                )
            items = [json.dumps(e, separators=(",", ":")) for e in decoded]
        return output, items

    def _run_fallback(self, call: Call, *, called: bool = False) -> str:
        """Produce the step's output with its fallback, in this same attempt.

        ``called`` says the dependency was called and failed first: that failure
        counts for the breaker whatever the fallback makes of the step.
        """
        try:
            output, items = self._call(call, "fallback")
        except Exception as exc:
            error = _error(exc, call.ctx.attempt, f"fallback failed: {exc}")
            return self._patiently(
                lambda: self.store.fail(
                    call.attempt, error, retry_in=None, called=called, runner=call.runner
                )
            )
        how = "fallback-after-call" if called else "fallback"
        return self._patiently(
            lambda: self.store.complete(call.attempt, output, items, how=how, runner=call.runner)
        )

    def _record_failure(self, call: Call, exc: Exception, *, called: bool) -> str:
        ctx = call.ctx
        policy = call.loaded.workflow.policy_for(ctx.step)
        retry_in: float | None = None
        if is_retryable(exc, policy) and ctx.attempt < policy.max_attempts:
            retry_in = backoff_delay(policy, ctx.attempt, random.random)
        final = retry_in is None
        if final and call.has_fallback and not isinstance(exc, (HandoffError, StepCancelled)):
            return self._run_fallback(call, called=called)
        message = str(exc)
        if type(exc).__name__ == "SoftTimeLimitExceeded":  # Celery's soft time limit
            message = f"attempt {ctx.attempt} exceeded its {policy.timeout:g}s timeout"
        if not isinstance(exc, OrchestratorError):
            log.warning(
                "run %s step %s attempt %d failed: %r", ctx.run_id, ctx.step, ctx.attempt, exc
            )
        edge = exc.edge if isinstance(exc, HandoffError) else ""
        error = _error(exc, ctx.attempt, message)
        outcome = self._patiently(
            lambda: self.store.fail(
                call.attempt, error, retry_in=retry_in, edge=edge, called=called, runner=call.runner
            )
        )
        if outcome.startswith("fallback"):  # the retry budget said no; the fallback may answer
            return self._run_fallback(call, called=called)
        return outcome

    def recover_lost(self) -> int:
        """Record attempts whose lease ran out as failed (WorkerLostError): retry or fail."""
        recovered = 0
        for lost in self.store.expired_leases():
            ref = self.store.run_ref(lost.run_id)
            if ref is None:  # the run itself expired: nothing left to record
                self.store.redis.zrem(self.store.keys.leases, lost.lease_member())
                continue
            attempt = replace(lost, ref=ref)
            policy = self.load(ref).workflow.policy_for(attempt.step)
            if attempt.index == -1:
                self._recover_compensation(attempt, policy)
            else:
                self._recover_step(attempt, policy)
            recovered += 1
        return recovered

    def _recover_step(self, attempt: Attempt, policy: RetryPolicy) -> None:
        count = self.store.attempts_of(attempt)
        retry_in = backoff_delay(policy, count) if count < policy.max_attempts else None
        error = {
            "type": "WorkerLostError",
            "message": f"attempt {count} went silent for {self.store.lease_seconds:g}s: its "
            "worker was killed, ran out of memory or hit its hard time limit",
            "attempt": count,
        }
        called = self.load(attempt.ref).workflow.steps[attempt.step].dependency is not None
        outcome = self.store.fail(attempt, error, retry_in=retry_in, called=called)
        if outcome.startswith("fallback"):  # budget spent: the sweeper runs no user code
            outcome = self.store.fail(attempt, error, retry_in=None, called=called)
        if outcome.startswith("ok"):  # a stale lease (outcome already recorded) says nothing
            log.warning("run %s step %s: %s", attempt.run_id, attempt.step, error["message"])

    def _terminate(self, attempt: Attempt, after: float) -> bool:
        """Record a body that ignored its interrupt as failed; False when it has just ended."""
        error = {
            "type": "StepCancelled",
            "message": f"terminated: still running {after:g}s after its run was cancelled",
            "attempt": self.store.attempts_of(attempt),
        }
        return self.store.fail(attempt, error, retry_in=None).startswith("ok")

    def _recover_compensation(self, attempt: Attempt, policy: RetryPolicy) -> None:
        count = self.store.attempts_of(attempt)
        retry_in = backoff_delay(policy, count) if count < policy.max_attempts else None
        message = f"compensation attempt {count} went silent: its worker was lost"
        error = {"type": "WorkerLostError", "message": message, "attempt": count}
        self.store.undo_done(attempt, error, retry_in=retry_in)

    def _patiently(self, call: Callable[[], T]) -> T:
        """Retry a Redis call through a short outage (scripts are safe to repeat)."""
        deadline = time.monotonic() + REDIS_PATIENCE
        pause = 0.1
        while True:
            try:
                return call()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise RedisUnavailableError(f"Redis unreachable: {exc}") from None
                time.sleep(pause)
                pause = min(2.0, pause * 2)


def _error(exc: Exception, attempt: int, message: str) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": message, "attempt": attempt}
