"""Steps and a hook for the child workflow tests, recording across a whole run tree.

Every run of a tree gets the run input's ``tree`` field (a child's input is
bound from its parent's run input and upstream outputs), so the ledgers are
kept per tree, whichever run a step belongs to.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from orchestrator import Hooks, NonRetryableError, StepContext, step
from orchestrator.hooks import AttemptFinished, AttemptStarted


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["ORCH_REDIS_URL"], decode_responses=True)


def undone_key(tree: str) -> str:
    return f"children:undone:{tree}"


@step
def work(ctx: StepContext, tree: str, fail_at: str = "", **_: Any) -> str:
    """Does its work, or fails for good when it is the step the input names."""
    _redis().rpush(f"children:done:{tree}", ctx.step)
    if ctx.step == fail_at:
        raise NonRetryableError(f"{ctx.step} fails, as the test asked")
    return f"{ctx.step} done"


@step
def undo(ctx: StepContext, tree: str, **_: Any) -> None:
    """Compensation: appends the step to the tree's ledger, in the order undone."""
    _redis().rpush(undone_key(tree), ctx.step)


@step
def slow(ctx: StepContext, tree: str, **_: Any) -> str:
    """Runs until its run is cancelled (or 20 s pass), saying when it started."""
    _redis().rpush(f"children:started:{tree}", ctx.step)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not ctx.cancelled:
        time.sleep(0.05)
    return "slow done"


def pause_key(step_name: str) -> str:
    return f"children:paused:{step_name}"


class _PauseOnce(Hooks):
    """Blocks the first attempt of step ``down`` in the worker process, saying where it is."""

    def _pause(self, step_name: str, run_id: str) -> None:
        if step_name != "down":
            return
        r = _redis()
        where = json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "run": run_id})
        if r.set(pause_key(step_name), where, nx=True):
            time.sleep(60)


class PauseBeforeSpawn(_PauseOnce):
    """Pauses after the claim, before the child run is started: a kill loses the claim."""

    def on_attempt_started(self, event: AttemptStarted) -> None:
        self._pause(event.step, event.run_id)


class PauseAfterSpawn(_PauseOnce):
    """Pauses once the child run is started: a kill loses the message, not the child."""

    def on_attempt_finished(self, event: AttemptFinished) -> None:
        self._pause(event.step, event.run_id)


@step
def items(count: int = 3) -> list[int]:
    return list(range(1, count + 1))


@step
def double(items: int, ctx: StepContext) -> dict[str, Any]:
    """A child's step: ``items`` is the one element its parent's map gave the child."""
    return {"doubled": items * 2, "run": ctx.run_id}
