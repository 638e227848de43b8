"""Steps and compensations for the saga acceptance tests (tests/integration/test_sagas.py).

Every step body notes, in Redis, when it started and that it ran; its output
names the run and the step (``out:{run}:{step}``), so a compensation can check
that it received its step's *own* output. Compensations are bound like steps:
``undo_s3(ctx, s3: str)`` receives ``s3``'s output through the parameter named
after the step. Each compensation records

- every call (``sagac:undo-calls:{run}``, a count per step);
- its effect once per idempotency key (``SET NX sagac:undone:{key}``), in the
  order the effects happened (``sagac:undone:{run}``);
- anything it found wrong (``sagac:bad:{run}``): a wrong own output, a context
  that does not say it is compensating, a key not ending in ``/undo``.

Run-input fields tune them: ``delay`` (step bodies), ``undo_delay``
(compensations), ``db`` (an SQLite file for the effect ledger of the fault
test).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from typing import Any

import redis

from orchestrator import NonRetryableError, StepCancelled, StepContext, step


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"], decode_responses=True)


def expected_output(run_id: str, step: str) -> str:
    return f"out:{run_id}:{step}"


def _note_start(r: redis.Redis, ctx: StepContext) -> None:
    r.hincrby(f"sagac:exec:{ctx.run_id}", ctx.step, 1)
    r.rpush(f"sagac:starts:{ctx.run_id}", json.dumps({"step": ctx.step, "t": time.time()}))


# -- step bodies -------------------------------------------------------------


@step
def work(ctx: StepContext, delay: float = 0.0, **_: Any) -> str:
    """A step with an effect: notes its start, sleeps ``delay``, returns its own output."""
    r = _redis()
    _note_start(r, ctx)
    time.sleep(delay)
    r.rpush(f"sagac:effects:{ctx.run_id}", ctx.step)
    return expected_output(ctx.run_id, ctx.step)


@step
def jitter(ctx: StepContext, delays: dict[str, float] | None = None, **_: Any) -> str:
    """Like ``work``, with a per-step delay from the run input (``delays[step]``)."""
    return work(ctx, (delays or {}).get(ctx.step, 0.0))


@step
def long_work(ctx: StepContext, long_delay: float = 5.0, **_: Any) -> str:
    """A long step that stops early (and still succeeds) once its run is being cancelled."""
    r = _redis()
    _note_start(r, ctx)
    deadline = time.monotonic() + long_delay
    while time.monotonic() < deadline and not ctx.cancelled:
        time.sleep(0.05)
    r.rpush(f"sagac:effects:{ctx.run_id}", ctx.step)
    return expected_output(ctx.run_id, ctx.step)


@step
def boom(ctx: StepContext, **_: Any) -> None:
    """Fails for good (NonRetryableError)."""
    _note_start(_redis(), ctx)
    raise NonRetryableError(f"{ctx.step} cannot go on")


@step
def boom_once_s0_runs(ctx: StepContext, **_: Any) -> None:
    """Fails for good, but only once its sibling ``s0`` has started (at most 10 s later), so
    that ``s0`` is surely running when this fails the run, however busy the workers are."""
    r = _redis()
    _note_start(r, ctx)
    deadline = time.monotonic() + 10.0
    while not r.hget(f"sagac:exec:{ctx.run_id}", "s0") and time.monotonic() < deadline:
        time.sleep(0.01)
    raise NonRetryableError(f"{ctx.step} cannot go on")


@step
def fails_late(ctx: StepContext, late_delay: float = 0.7, **_: Any) -> None:
    """Runs a while, then fails for good: still running when a sibling fails the run."""
    _note_start(_redis(), ctx)
    time.sleep(late_delay)
    raise NonRetryableError(f"{ctx.step} failed late")


@step
def interruptible(ctx: StepContext, hold: float = 30.0, **_: Any) -> str:
    """Blocks in one long sleep; notes the interrupt that ends it and runs its cleanup."""
    r = _redis()
    _note_start(r, ctx)
    try:
        time.sleep(hold)
    except StepCancelled as exc:
        r.rpush(f"sagac:interrupted:{ctx.run_id}", str(exc))
        raise
    finally:
        r.rpush(f"sagac:cleanup:{ctx.run_id}", ctx.step)
    r.rpush(f"sagac:effects:{ctx.run_id}", ctx.step)
    return expected_output(ctx.run_id, ctx.step)


@step
def stubborn(ctx: StepContext, hold: float = 30.0, **_: Any) -> str:
    """Swallows every interrupt and goes on; notes its process so a test can see it die."""
    r = _redis()
    _note_start(r, ctx)
    r.rpush(f"sagac:where:{ctx.run_id}", json.dumps({"step": ctx.step, "pid": os.getpid()}))
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except StepCancelled:
            r.rpush(f"sagac:interrupted:{ctx.run_id}", "ignored")
    r.rpush(f"sagac:effects:{ctx.run_id}", ctx.step)
    return expected_output(ctx.run_id, ctx.step)


# -- compensations -----------------------------------------------------------


def _undo(ctx: StepContext, own: Any, undo_delay: float = 0.0) -> None:
    r = _redis()
    r.hincrby(f"sagac:undo-calls:{ctx.run_id}", ctx.step, 1)
    r.rpush(f"sagac:undo-starts:{ctx.run_id}", json.dumps({"step": ctx.step, "t": time.time()}))
    problems = []
    if own != expected_output(ctx.run_id, ctx.step):
        problems.append(f"own output {own!r}")
    if not ctx.compensating:
        problems.append("ctx.compensating is False")
    if ctx.idempotency_key != f"{ctx.run_id}/{ctx.step}/undo":
        problems.append(f"idempotency key {ctx.idempotency_key!r}")
    if problems:
        r.rpush(f"sagac:bad:{ctx.run_id}", f"{ctx.step}: {', '.join(problems)}")
    time.sleep(undo_delay)
    if r.set(f"sagac:undone:{ctx.idempotency_key}", "1", nx=True):
        r.rpush(f"sagac:undone:{ctx.run_id}", ctx.step)


@step
def undo_s0(ctx: StepContext, s0: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s0, undo_delay)


@step
def undo_s1(ctx: StepContext, s1: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s1, undo_delay)


@step
def undo_s2(ctx: StepContext, s2: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s2, undo_delay)


@step
def undo_s3(ctx: StepContext, s3: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s3, undo_delay)


@step
def undo_s4(ctx: StepContext, s4: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s4, undo_delay)


@step
def undo_s5(ctx: StepContext, s5: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s5, undo_delay)


@step
def undo_s6(ctx: StepContext, s6: str, undo_delay: float = 0.0) -> None:
    _undo(ctx, s6, undo_delay)


def _undo_until_fixed(ctx: StepContext, own: str) -> None:
    """A compensation that fails (retryably) until the test sets ``sagac:fixed:{run}``."""
    r = _redis()
    if not r.get(f"sagac:fixed:{ctx.run_id}"):
        r.hincrby(f"sagac:undo-calls:{ctx.run_id}", ctx.step, 1)
        raise RuntimeError(f"cannot undo {ctx.step} yet")
    _undo(ctx, own)


@step
def undo_s0_until_fixed(ctx: StepContext, s0: str) -> None:
    _undo_until_fixed(ctx, s0)


@step
def undo_s1_until_fixed(ctx: StepContext, s1: str) -> None:
    _undo_until_fixed(ctx, s1)


@step
def undo_always_fails(ctx: StepContext, **_: Any) -> None:
    """A compensation that cannot succeed (a retryable error every time)."""
    _redis().hincrby(f"sagac:undo-calls:{ctx.run_id}", ctx.step, 1)
    raise RuntimeError(f"cannot undo {ctx.step}")


@step
def undo_ledger(ctx: StepContext, db: str, undo_delay: float = 3.0, **_: Any) -> None:
    """Says which process runs it, sleeps (long enough to be killed), then writes its
    effect into an SQLite ledger keyed by the idempotency key (INSERT OR IGNORE)."""
    r = _redis()
    r.hincrby(f"sagac:undo-calls:{ctx.run_id}", ctx.step, 1)
    where = {"step": ctx.step, "attempt": ctx.attempt, "pid": os.getpid(), "ppid": os.getppid()}
    r.rpush(f"sagac:where:{ctx.run_id}", json.dumps(where))
    time.sleep(undo_delay)
    with closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        conn.execute("INSERT OR IGNORE INTO effects(key) VALUES (?)", (ctx.idempotency_key,))
