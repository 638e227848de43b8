"""Steps for graph-shaped integration tests: one generic node, plus payload probes.

``node`` can stand for any step named ``a`` .. ``h``. A parameter named after an
upstream step receives that step's output, so the node reports which upstream
outputs it actually received (``got``) and combines their values. Behaviour is
steered per step name through the run input, so one function serves every
shape: ``weights`` (the node's own value), ``sleeps`` (seconds to sleep),
``fail`` (step names that raise ``NonRetryableError``) and ``flaky`` (step name
-> how many first attempts raise a retryable error).
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator import NonRetryableError, StepContext, step
from tests.steps.basic import _redis, record

#: How long a held step waits for its latch before failing (a bound, not a timing).
HOLD_LIMIT = 60.0

Out = dict[str, Any] | None


@step
def node(
    ctx: StepContext,
    a: Out = None,
    b: Out = None,
    c: Out = None,
    d: Out = None,
    e: Out = None,
    f: Out = None,
    g: Out = None,
    h: Out = None,
    weights: dict[str, int] | None = None,
    sleeps: dict[str, float] | None = None,
    fail: list[str] | None = None,
    flaky: dict[str, int] | None = None,
    holds: dict[str, str] | None = None,
) -> dict[str, Any]:
    record(ctx)
    latch = (holds or {}).get(ctx.step)
    if latch:
        hold(latch)
    ups = {k: v for k, v in {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h}.items()
           if v is not None}  # fmt: skip
    delay = (sleeps or {}).get(ctx.step, 0.0)
    if delay:
        time.sleep(delay)
    if ctx.step in (fail or []):
        raise NonRetryableError(f"{ctx.step} failed on purpose")
    if ctx.attempt <= (flaky or {}).get(ctx.step, 0):
        raise RuntimeError(f"{ctx.step}: transient failure on attempt {ctx.attempt}")
    own = (weights or {}).get(ctx.step, 0)
    return {
        "step": ctx.step,
        "value": own + sum(int(v["value"]) for v in ups.values()),
        "got": {k: v["step"] for k, v in ups.items()},
        "attempt": ctx.attempt,
    }


@step
def big(ctx: StepContext, size: int) -> str:
    """An output of ``size`` bytes once JSON-encoded (plus the two quotes)."""
    record(ctx)
    return "x" * size


@step
def chunky(ctx: StepContext, seq: int, size: int) -> str:
    """One map element's output: small alone, large once the elements are joined."""
    record(ctx)
    return str(seq % 10) * size


@step
def slow_square(ctx: StepContext, seq: int, delay: float = 0.0) -> int:
    record(ctx)
    time.sleep(delay)
    return seq * seq


@step
def slow_sum(ctx: StepContext, square: list[int], delay: float = 0.0) -> int:
    record(ctx)
    time.sleep(delay)
    return sum(square)


@step
def slow_seq(ctx: StepContext, n: int, seq_delay: float = 0.0) -> list[int]:
    """A list to map over, produced slowly (so it can outlive a failed run)."""
    record(ctx)
    time.sleep(seq_delay)
    return list(range(n))


def hold(latch: str) -> None:
    """Wait until the test sets Redis key ``latch`` (so "while it runs" needs no sleep)."""
    r = _redis()
    deadline = time.monotonic() + HOLD_LIMIT
    while not r.exists(latch):
        if time.monotonic() > deadline:
            raise RuntimeError(f"latch {latch} was never released")
        time.sleep(0.02)
