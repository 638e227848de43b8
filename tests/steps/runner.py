"""Steps that note which Celery task (message) and process ran them, for the runner tests."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import current_task

from orchestrator import StepContext, step


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"], decode_responses=True)


@step
def traced(ctx: StepContext, delays: dict[str, float] | None = None, **_: Any) -> str:
    """Notes its step, element, Celery task id, process and times; sleeps ``delays[step]``."""
    r = _redis()
    started = time.time()
    name = ctx.step if ctx.index is None else f"{ctx.step}[{ctx.index}]"
    r.hincrby(f"runner:exec:{ctx.run_id}", name, 1)
    r.rpush(f"runner:where:{ctx.run_id}", json.dumps({"step": name, "pid": os.getpid()}))
    time.sleep((delays or {}).get(ctx.step, 0.0))
    trace = {
        "step": name,
        "task": current_task.request.id,
        "pid": os.getpid(),
        "t0": started,
        "t1": time.time(),
    }
    r.rpush(f"runner:trace:{ctx.run_id}", json.dumps(trace))
    return name


@step
def items(ctx: StepContext, n: int = 8, **_: Any) -> list[int]:
    traced(ctx)
    return list(range(n))


@step
def element(ctx: StepContext, src: int, delays: dict[str, float] | None = None) -> int:
    traced(ctx, delays)
    return src * 10
