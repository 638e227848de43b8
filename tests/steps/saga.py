"""Steps with effects and compensations, recording both for exactly-once checks."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from orchestrator import NonRetryableError, StepContext, step


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"], decode_responses=True)


@step
def effect(ctx: StepContext, delay: float = 0.0, **_: Any) -> str:
    """Does something to the outside world: appends to the run's effect ledger."""
    r = _redis()
    r.hincrby(f"saga:exec:{ctx.run_id}", ctx.step, 1)
    time.sleep(delay)
    r.rpush(f"saga:effects:{ctx.run_id}", ctx.step)
    return f"did {ctx.step}"


@step
def slow_effect(ctx: StepContext, delay: float = 5.0, **_: Any) -> str:
    """A long step that stops early when its run is cancelled."""
    _redis().rpush(f"saga:started:{ctx.run_id}", ctx.step)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and not ctx.cancelled:
        time.sleep(0.05)
    return effect(ctx)


@step
def undo(ctx: StepContext, **inputs: Any) -> None:
    """Compensation: records what it undoes, once per idempotency key (an effect ledger)."""
    r = _redis()
    own = inputs.get(ctx.step)
    r.hincrby(f"saga:undo-calls:{ctx.run_id}", ctx.step, 1)
    if r.set(f"saga:undone:{ctx.idempotency_key}", "1", nx=True):
        r.rpush(f"saga:undone:{ctx.run_id}", f"{ctx.step}:{own}")


@step
def fails(ctx: StepContext, **_: Any) -> None:
    _redis().hincrby(f"saga:exec:{ctx.run_id}", ctx.step, 1)
    raise NonRetryableError(f"{ctx.step} cannot go on")


@step
def fails_until_fixed(ctx: StepContext, **_: Any) -> str:
    """Fails until the test sets saga:fixed:{workflow}: a bug fixed between runs."""
    r = _redis()
    r.hincrby(f"saga:exec:{ctx.run_id}", ctx.step, 1)
    if not r.get(f"saga:fixed:{ctx.workflow}"):
        raise NonRetryableError("not fixed yet")
    return "fixed"
