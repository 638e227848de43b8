"""Steps for the fault-injection tests: they say where they run and leave effects.

Every step notes each execution in Redis before doing anything else: a count
per idempotency key (``test:exec:{run}``, as in ``tests.steps.basic``) and,
per attempt (and map element), the pid of the process running it and of that process's parent
(``test:where:{run}``), so a test can find the prefork child or the worker
that runs a step and kill it. Side effects go into a SQLite file named by the
run input, keyed by ``ctx.idempotency_key``, so that a re-execution after a
lost attempt is harmless and the test can count what actually happened.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from contextlib import closing
from typing import Any

import redis

from orchestrator import StepContext, step


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"])


def note_start(ctx: StepContext) -> None:
    """Count this execution and say which process runs it."""
    r = _redis()
    try:
        r.hincrby(f"test:exec:{ctx.run_id}", ctx.idempotency_key, 1)
        where = {
            "step": ctx.step,
            "index": ctx.index,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            "ppid": os.getppid(),
        }
        r.rpush(f"test:where:{ctx.run_id}", json.dumps(where))
    finally:
        r.close()


def _sql(db: str, statement: str, *params: Any) -> None:
    with closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        conn.execute(statement, params)


@step
def effect(ctx: StepContext, db: str, delay: float = 4.0) -> str:
    """Sleep (long enough to be killed), then write one effect keyed by the idempotency key."""
    note_start(ctx)
    time.sleep(delay)
    _sql(db, "INSERT OR IGNORE INTO effects(key) VALUES (?)", ctx.idempotency_key)
    return ctx.idempotency_key


@step
def poison(ctx: StepContext) -> None:
    """Kill the process that runs it, every time: a step no attempt can survive."""
    note_start(ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@step
def link(
    ctx: StepContext,
    db: str,
    delay: float = 0.3,
    s1: int | None = None,
    s2: int | None = None,
    s3: int | None = None,
    s4: int | None = None,
) -> int:
    """One link of the chain s1 → … → s5: its upstream's value plus one.

    It does not touch Redis (it may run while Redis restarts); its executions
    are counted in SQLite instead, one row each.
    """
    prev = next((v for v in (s4, s3, s2, s1) if v is not None), 0)
    _sql(db, "INSERT INTO executions(key, pid) VALUES (?, ?)", ctx.idempotency_key, os.getpid())
    time.sleep(delay)
    return prev + 1


@step
def item_effect(ctx: StepContext, db: str, seq: int, delay: float = 3.0) -> int:
    """One map element: like ``effect``, keyed per element (``run/step/index``)."""
    note_start(ctx)
    time.sleep(delay)
    _sql(db, "INSERT OR IGNORE INTO effects(key) VALUES (?)", ctx.idempotency_key)
    return seq * seq


@step
def slow_undo(ctx: StepContext, delay: float = 3.0, **_: Any) -> None:
    """A compensation slow enough to be killed; says where it runs, marked ``undo``."""
    r = _redis()
    try:
        where = {"step": ctx.step, "undo": True, "attempt": ctx.attempt, "pid": os.getpid()}
        r.rpush(f"test:where:{ctx.run_id}", json.dumps(where))
    finally:
        r.close()
    time.sleep(delay)
