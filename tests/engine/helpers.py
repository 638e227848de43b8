"""A rig for driving the engine's scripts directly: one store, one key prefix, one queue.

Each test gets its own key prefix and its own default queue, so nothing it
writes (runs, breakers, delayed entries, dispatched messages) is seen by
another test or by any Celery worker sharing the session's redis-server.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from orchestrator import Flow
from orchestrator.compiler import Plan, compile_plan
from orchestrator.keys import Keys
from orchestrator.messages import priority_lists
from orchestrator.spec import Workflow
from orchestrator.store import Attempt, Observe, RunStore, new_token
from orchestrator.store import outcomes as o

T = TypeVar("T")

ERROR = {"type": "RuntimeError", "message": "boom"}
TASK = "tests.unit.stepfns:fetch"


def until(probe: Callable[[], T | None], what: str, limit: float = 10.0) -> T:
    """Poll ``probe`` until it answers something truthy (a bounded wait, not a timing check)."""
    deadline = time.monotonic() + limit
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def moves(outcome: Any) -> list[tuple[str, str | None, str | None]]:
    """The step moves an outcome's decisions report, as (step, from, to)."""
    return [(d.step, d.src, d.dst) for d in outcome.decisions if isinstance(d, o.StepMoved)]


def run_moves(outcome: Any) -> list[tuple[str | None, str]]:
    return [(d.src, d.dst) for d in outcome.decisions if isinstance(d, o.RunMoved)]


def of_type(outcome: Any, kind: type[T]) -> list[T]:
    return [d for d in outcome.decisions if isinstance(d, kind)]


def again(attempt: Attempt) -> Attempt:
    """A second attempt at the same step, with its own token."""
    return dataclasses.replace(attempt, token=new_token())


class Rig:
    def __init__(self, url: str) -> None:
        self.tag = uuid.uuid4().hex[:10]
        self.keys = Keys(prefix=f"t{self.tag}:")
        self.queue = f"q{self.tag}"
        self.redis = redis.Redis.from_url(url)
        self.store = self.store_with(lease_seconds=5.0)
        self.engine = self.store.engine
        self.reads = self.store.reads
        self.upkeep = self.store.upkeep

    def store_with(self, *, lease_seconds: float) -> RunStore:
        """Another store on the same client and keys, with its own lease length."""
        return RunStore(
            self.redis,
            self.keys,
            run_ttl=60,
            max_payload=1 << 20,
            lease_seconds=lease_seconds,
            observe=Observe.ALL,
        )

    def close(self) -> None:
        """Drop everything the test wrote: its queue and every key under its prefix."""
        doomed = [*priority_lists(self.queue), *self.redis.scan_iter(f"{self.keys.prefix}*", 1000)]
        self.redis.delete(*doomed)
        self.redis.close()

    # -- workflows ------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"w{self.tag}"

    def flow(self, **options: Any) -> Flow:
        return Flow(self.name, 1, **options)

    def install(self, wf: Workflow) -> Plan:
        plan = compile_plan(wf, default_queue=self.queue)
        assert isinstance(self.engine.register(wf, plan), o.Registered)
        return plan

    def start(self, plan: Plan, run_input: str = '{"x": 1}', key: str | None = None) -> str:
        submitted = self.engine.submit(plan, run_input, key=key)
        assert isinstance(submitted, o.Submitted)
        assert submitted.created
        return submitted.run_id

    # -- attempts -------------------------------------------------------------

    def claim(self, run_id: str, plan: Plan, step: str, **kw: Any) -> tuple[Attempt, o.Run]:
        attempt = Attempt(run_id, plan.ref, step, **kw)
        claim = self.engine.claim(attempt, "w1")
        assert isinstance(claim, o.Run), claim
        return attempt, claim

    def finish(self, run_id: str, plan: Plan, step: str, output: str = "1") -> o.Recorded:
        attempt, _ = self.claim(run_id, plan, step)
        done = self.engine.complete(attempt, output, [])
        assert isinstance(done, o.Recorded), done
        return done

    # -- what the engine stored ------------------------------------------------

    def fields(self, run_id: str) -> dict[str, str]:
        return self.reads.run_fields(run_id)

    def state(self, run_id: str, step: str | None = None) -> str:
        fields = self.fields(run_id)
        if step is None:
            return fields["state"]
        return fields.get(f"{step}.state", "PENDING")

    def messages(self) -> list[str]:
        """The ``workflow.step`` of every message queued on the rig's queue, in the order
        workers take them: the highest priority first, then oldest first."""
        raw = [m for q in priority_lists(self.queue) for m in reversed(self.redis.lrange(q, 0, -1))]
        return [json.loads(m)["headers"]["shadow"] for m in raw]

    def count(self, step: str) -> int:
        """Messages queued for ``step`` (a compensation is ``step.undo``)."""
        return self.messages().count(f"{self.name}.{step}")

    def delayed(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.redis.zrange(self.keys.delayed, 0, -1)]
