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
    HandoffError,
    NonRetryableError,
    OrchestratorError,
    RedisUnavailableError,
)
from orchestrator.resilience import backoff_delay, is_retryable
from orchestrator.spec import Workflow
from orchestrator.steps import StepContext, StepFunction, encode_output, import_task
from orchestrator.store import Attempt, Claim, RunStore
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
    functions: dict[str, StepFunction] = field(default_factory=dict)

    def function(self, step: str) -> StepFunction:
        fn = self.functions.get(step)
        if fn is None:
            path = self.workflow.steps[step].task
            if path is None:
                raise NonRetryableError(f"step {step!r} has no task to run")
            fn = StepFunction.wrap(import_task(path, where=f"step {step!r}, field 'task'"))
            self.functions[step] = fn
        return fn


class StepRuntime:
    def __init__(self, store: RunStore, *, default_queue: str = "orch") -> None:
        self.store = store
        self.default_queue = default_queue
        self._loaded: dict[str, LoadedWorkflow] = {}
        self.leases = LeaseKeeper(store)

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
        attempt = Attempt(run_id, ref, step, index)
        claim = self._patiently(lambda: self.store.claim(attempt, worker))
        if not isinstance(claim, Claim):
            log.info("run %s step %s[%s] not run: %s", run_id, step, index, claim)
            return claim
        loaded = self.load(ref)
        wf = loaded.workflow
        ctx = StepContext(run_id, wf.name, wf.version, step, claim.attempt, index, worker)
        with self.leases.held(attempt):
            try:
                output, items = self._call(loaded, ctx, claim)
            except Exception as exc:  # every failure is recorded; the worker stays up
                return self._record_failure(loaded, ctx, attempt, exc)
        return self._patiently(lambda: self.store.complete(attempt, output, items))

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
            count = self.store.attempts_of(attempt)
            retry_in = backoff_delay(policy, count) if count < policy.max_attempts else None
            error = {
                "type": "WorkerLostError",
                "message": f"attempt {count} went silent for {self.store.lease_seconds:g}s: its "
                "worker was killed, ran out of memory or hit its hard time limit",
                "attempt": count,
            }
            log.warning("run %s step %s: %s", attempt.run_id, attempt.step, error["message"])
            self.store.fail(attempt, error, retry_in=retry_in)
            recovered += 1
        return recovered

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

    def _call(
        self, loaded: LoadedWorkflow, ctx: StepContext, claim: Claim
    ) -> tuple[str, list[str]]:
        fn = loaded.function(ctx.step)
        upstream = {
            k: json.loads(v) if v is not None else None for k, v in claim.upstream_json.items()
        }
        kwargs = fn.bind(ctx.step, upstream, json.loads(claim.input_json), ctx)
        value = fn.func(**kwargs)
        what = f"step {ctx.step!r}" + (f" element {ctx.index}" if ctx.index is not None else "")
        output = encode_output(value, limit=self.store.max_payload, what=what)
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

    def _record_failure(
        self, loaded: LoadedWorkflow, ctx: StepContext, attempt: Attempt, exc: Exception
    ) -> str:
        policy = loaded.workflow.policy_for(ctx.step)
        retry_in: float | None = None
        if is_retryable(exc, policy) and ctx.attempt < policy.max_attempts:
            retry_in = backoff_delay(policy, ctx.attempt, random.random)
        error: dict[str, Any] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "attempt": ctx.attempt,
        }
        if not isinstance(exc, OrchestratorError):
            log.warning(
                "run %s step %s attempt %d failed: %r", ctx.run_id, ctx.step, ctx.attempt, exc
            )
        edge = exc.edge if isinstance(exc, HandoffError) else ""
        return self._patiently(
            lambda: self.store.fail(attempt, error, retry_in=retry_in, edge=edge)
        )
