"""Small, observable steps: each records its execution in Redis for assertions."""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from pydantic import BaseModel

from orchestrator import NonRetryableError, StepContext, step


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"])


def record(ctx: StepContext, **extra: Any) -> None:
    """Note that this step body ran: count per idempotency key, and the time."""
    r = _redis()
    key = ctx.idempotency_key
    r.hincrby(f"test:exec:{ctx.run_id}", key, 1)
    r.rpush(f"test:order:{ctx.run_id}", f"{ctx.step}:{time.time():.6f}:start")
    for k, v in extra.items():
        r.hset(f"test:extra:{ctx.run_id}", f"{key}:{k}", str(v))


@step
def emit(ctx: StepContext, value: int = 1) -> int:
    record(ctx)
    return value


@step
def add_one(ctx: StepContext, **_: Any) -> int:
    record(ctx)
    return 1


@step
def total(ctx: StepContext, **inputs: Any) -> int:
    record(ctx)
    return 1


@step
def seq(ctx: StepContext, n: int) -> list[int]:
    record(ctx)
    return list(range(n))


@step
def square(ctx: StepContext, seq: int) -> int:
    record(ctx)
    return seq * seq


@step
def sum_list(ctx: StepContext, square: list[int]) -> int:
    record(ctx)
    return sum(square)


class Doc(BaseModel):
    url: str
    text: str


@step
def fetch(ctx: StepContext, url: str) -> Doc:
    record(ctx)
    return Doc(url=url, text=f"text of {url}")


@step
def length(ctx: StepContext, fetch: Doc) -> int:
    record(ctx)
    return len(fetch.text)


@step
def wants_int(ctx: StepContext, fetch: int) -> int:
    record(ctx)
    return fetch


@step
def sleepy(ctx: StepContext, delay: float = 0.0) -> str:
    record(ctx)
    time.sleep(delay)
    return ctx.step


@step
def boom(ctx: StepContext) -> None:
    record(ctx)
    raise NonRetryableError("boom")


@step
def flaky(ctx: StepContext, fail_times: int = 1) -> int:
    """Fails its first ``fail_times`` attempts (per idempotency key), then succeeds."""
    record(ctx)
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")
    return ctx.attempt


@step
def noop() -> int:
    """Does nothing and touches nothing: for counting the orchestrator's own cost."""
    return 1


@step
def stubborn(ctx: StepContext, seconds: float = 5.0) -> int:
    """Sleeps through its soft time limit once (attempt 1), then returns quickly."""
    record(ctx)
    if ctx.attempt == 1:
        time.sleep(seconds)
    return ctx.attempt


@step
def provider(ctx: StepContext, outage_until: float = 0.0, hold: float = 0.0) -> str:
    """A simulated LLM call: fails while ``time.time() < outage_until``; counts calls."""
    r = _redis()
    r.incr(f"test:calls:{ctx.workflow}")
    now = r.incr(f"test:inflight:{ctx.workflow}")
    r.execute_command("SET", f"test:peak:{ctx.workflow}", now, "GET")
    peak = int(r.get(f"test:peakmax:{ctx.workflow}") or 0)
    if now > peak:
        r.set(f"test:peakmax:{ctx.workflow}", now)
    r.rpush(f"test:calltimes:{ctx.workflow}", f"{time.time():.6f}")
    try:
        time.sleep(hold)
        if time.time() < outage_until:
            raise RuntimeError("provider unavailable")
        return "label"
    finally:
        r.decr(f"test:inflight:{ctx.workflow}")


@step
def small_model(ctx: StepContext, **_: Any) -> str:
    """The fallback of ``provider``: a smaller, always-available model."""
    return "small-label"


@step
def is_big(emit: int) -> bool:
    """A `when` predicate over an upstream output."""
    return emit > 10


@step
def explodes(emit: int) -> bool:
    raise ValueError("predicate bug")


class Approval(BaseModel):
    approved: bool
    by: str


@step
def publish(ctx: StepContext, review: Approval | None, emit: int) -> str:
    """Downstream of a human approval; the signal's data arrives as ``review``."""
    record(ctx)
    if review is None:
        return f"published {emit} without review"
    return f"published {emit} approved={review.approved} by {review.by}"
