"""Step functions of the benchmark workflows (``bench.steps:noop`` and friends).

They are deliberately trivial so that what the benchmark measures is the
orchestrator's own cost per step, not the work inside the step. They do not
touch Redis (unlike ``tests.steps.basic``, which records executions), so the
Redis command counts are the engine's alone.

The DAG scenario needs a different sleep per step, and a step spec has no
per-step arguments, so each duration there is its own tiny function.
"""

from __future__ import annotations

import json
import os
import time

import redis

from orchestrator import StepContext, step


@step
def noop() -> int:
    """Do nothing; the plain side's ``bench.noop`` also returns 1."""
    return 1


@step
def nap(seconds: float = 0.0) -> int:
    """Sleep ``seconds`` (from the run input); the plain side's ``bench.sleep``."""
    time.sleep(seconds)
    return 1


@step
def seq(n: int) -> list[int]:
    """The list a map step maps over: ``list(range(n))``."""
    return list(range(n))


@step
def nap_a() -> int:
    """DAG scenario step a: 0.2 s."""
    return nap(0.2)


@step
def nap_b() -> int:
    """DAG scenario step b: 0.6 s (the start of the critical path)."""
    return nap(0.6)


@step
def nap_c() -> int:
    """DAG scenario step c: 0.3 s (see ``bench.scenarios.DAG_SLEEPS`` for why not 0.5 s)."""
    return nap(0.3)


@step
def nap_d() -> int:
    """DAG scenario step d: 0.2 s."""
    return nap(0.2)


@step
def nap_e() -> int:
    """DAG scenario step e: 0.2 s."""
    return nap(0.2)


@step
def watched(ctx: StepContext, seconds: float = 5.0) -> int:
    """Say when and where each attempt starts (``bench.recovery`` kills it), then sleep."""
    r = redis.Redis.from_url(os.environ["ORCH_REDIS_URL"])
    try:
        start = {"attempt": ctx.attempt, "pid": os.getpid(), "ppid": os.getppid(), "t": time.time()}
        r.rpush(f"bench:starts:{ctx.run_id}", json.dumps(start))
    finally:
        r.close()
    time.sleep(seconds)
    return ctx.attempt
