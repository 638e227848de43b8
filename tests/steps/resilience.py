"""Steps for the resilience tests: a simulated provider that counts what it sees.

Every call notes itself under ``res:{tag}:*`` in the Redis the worker uses, so
a test that passes a ``tag`` of its own (a fresh uuid) can count calls across
many runs and workflows: all calls, first attempts and retries, each call's
time, the pids that ran it, and the peak number of calls in flight at once.
"""

from __future__ import annotations

import os
import time

import redis
from celery.exceptions import SoftTimeLimitExceeded

from orchestrator import NonRetryableError, StepContext, step

# Raise the stored peak to the new in-flight count, atomically.
_PEAK = """
local now = redis.call('INCR', KEYS[1])
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > peak then redis.call('SET', KEYS[2], now) end
return now
"""


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"], decode_responses=True)


def counts(r: redis.Redis, tag: str) -> dict[str, int]:
    """What the provider saw for ``tag``: calls, firsts, retries, peak in flight."""
    names = ("calls", "firsts", "retries", "peak", "inflight")
    values = r.mget([f"res:{tag}:{n}" for n in names])
    return {n: int(v or 0) for n, v in zip(names, values, strict=True)}


def call_times(r: redis.Redis, tag: str) -> list[float]:
    return sorted(float(t) for t in r.lrange(f"res:{tag}:times", 0, -1))


def pids(r: redis.Redis, tag: str) -> list[int]:
    return [int(p) for p in r.lrange(f"res:{tag}:pids", 0, -1)]


def _note(r: redis.Redis, ctx: StepContext, tag: str) -> None:
    pipe = r.pipeline(transaction=False)
    pipe.incr(f"res:{tag}:calls")
    pipe.incr(f"res:{tag}:{'firsts' if ctx.attempt == 1 else 'retries'}")
    pipe.rpush(f"res:{tag}:times", f"{time.time():.6f}")
    pipe.rpush(f"res:{tag}:pids", os.getpid())
    pipe.execute()


@step
def provider(
    ctx: StepContext, tag: str, outage_until: float = 0.0, hold: float = 0.0, down: bool = False
) -> str:
    """A simulated LLM call: fails while ``time.time() < outage_until`` (or always,
    when ``down``), after holding the call ``hold`` seconds; counts everything."""
    r = _redis()
    try:
        _note(r, ctx, tag)
        r.eval(_PEAK, 2, f"res:{tag}:inflight", f"res:{tag}:peak")
        try:
            time.sleep(hold)
            if down or time.time() < outage_until:
                raise RuntimeError("provider unavailable")
            return "label"
        finally:
            r.decr(f"res:{tag}:inflight")
    finally:
        r.close()


@step
def ignores_soft_limit(ctx: StepContext, tag: str, seconds: float = 30.0) -> str:
    """Swallows Celery's soft time limit and keeps going: only the hard limit stops it."""
    r = _redis()
    try:
        _note(r, ctx, tag)
    finally:
        r.close()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except SoftTimeLimitExceeded:
            continue
    return "finished"


class QuotaError(Exception):
    """A made-up provider error, named in retry policies by its bare name."""


_ERRORS: dict[str, type[Exception]] = {
    "QuotaError": QuotaError,
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "NonRetryableError": NonRetryableError,
}


@step
def raises(ctx: StepContext, tag: str, kind: str, fail_times: int = 100) -> int:
    """Raises ``kind`` on its first ``fail_times`` attempts, then returns the attempt."""
    r = _redis()
    try:
        _note(r, ctx, tag)
    finally:
        r.close()
    if ctx.attempt <= fail_times:
        raise _ERRORS[kind](f"{kind} on attempt {ctx.attempt}")
    return ctx.attempt
