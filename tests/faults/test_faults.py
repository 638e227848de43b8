"""Fault injection: the guarantees of DESIGN.md when processes die and Redis restarts.

Each test gets its own redis-server and its own pool of two workers of two
prefork children each, serving a queue of its own, with a 2 s lease
(``ORCH_LEASE_SECONDS``) so that a lost attempt is found within a few seconds
rather than the default 30. A test may therefore kill children, whole workers
or the server without disturbing any other test.

What is checked is behaviour, never speed: killed attempts (of a step, of one
map element) are recorded as ``WorkerLostError`` and retried within
``max_attempts``; a step's side effect keyed by ``ctx.idempotency_key`` happens
once however often its body ran; a killed attempt gives back its dependency's
concurrency slot; a duplicate of a running step's message runs nothing; a step
that kills its process every time fails the run instead of looping; a graceful
Redis restart loses no run; and a live step's heartbeat keeps its lease however
long it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator import Client, Flow, Run
from orchestrator.client import TERMINAL
from orchestrator.embedded import EmbeddedRedis
from orchestrator.errors import RedisUnavailableError
from orchestrator.messages import priority_list, priority_lists
from tests.integration.helpers import (
    WEIGHTS,
    entered,
    expected_output,
    path,
    pool_processes,
    private_cluster,
    run_events,
    step_events,
    wait_until,
)
from workers.pool import WorkerPool

pytestmark = [pytest.mark.integration]

LEASE = 2.0
WAIT = 60.0
EFFECT = "tests.steps.faulty:effect"
POISON = "tests.steps.faulty:poison"
LINK = "tests.steps.faulty:link"
ITEM = "tests.steps.faulty:item_effect"
NODE = "tests.steps.dag:node"
FAST_RETRY = {"max_attempts": 3, "initial": 0.1}


@dataclass
class FaultEnv:
    """One private Redis, one private worker pool on a private queue, and a client."""

    server: EmbeddedRedis
    pool: WorkerPool
    client: Client
    r: redis.Redis
    queue: str
    tmp: Path

    def flow(self, **options: Any) -> Flow:
        return Flow(f"fault-{uuid.uuid4().hex[:10]}", 1, **options)

    def worker_pids(self) -> set[int]:
        return {w.pid for w in self.pool.workers}

    def executions(self, run_id: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(f"test:exec:{run_id}").items()}

    def where(self, run_id: str) -> list[dict[str, Any]]:
        """Where each execution ran: step, attempt, pid and parent pid (tests.steps.faulty)."""
        return [json.loads(x) for x in self.r.lrange(f"test:where:{run_id}", 0, -1)]

    def wait_where(self, run_id: str, attempt: int, timeout: float = WAIT) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def started() -> bool:
            found[:] = [w for w in self.where(run_id) if w["attempt"] == attempt]
            return bool(found)

        wait_until(started, timeout=timeout)
        return found[0]

    def wait(self, run: Run, timeout: float = WAIT) -> dict[str, Any]:
        """The run's final status document, read through Redis outages."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RedisUnavailableError, redis.RedisError):
                doc = run.status()
                if doc["state"] in TERMINAL:
                    return doc
            if time.monotonic() > deadline:
                pytest.fail(f"run {run.id} not finished after {timeout}s:\n{self.status_of(run)}")
            time.sleep(0.1)

    def status_of(self, run: Run) -> str:
        try:
            return json.dumps(run.status(), indent=1)
        except (RedisUnavailableError, redis.RedisError) as exc:
            return f"(status unreadable: {exc})"

    def leases_of(self, run_id: str) -> list[str]:
        return [m for m in self.r.zrange("orch:leases", 0, -1) if m.startswith(f"{run_id}|")]

    def delayed_of(self, run_id: str) -> list[str]:
        return [m for m in self.r.zrange("orch:delayed", 0, -1) if json.loads(m)["r"] == run_id]


@contextmanager
def fault_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **cluster: Any
) -> Iterator[FaultEnv]:
    """A private cluster on its own queue ``{name}-{8 hex}``; the CLI talks to its Redis."""
    queue = f"{name}-{uuid.uuid4().hex[:8]}"
    with private_cluster(tmp_path, queue=queue, **cluster) as c:
        monkeypatch.setenv("ORCH_REDIS_URL", c.server.url)
        yield FaultEnv(c.server, c.pool, c.client, c.r, queue, tmp_path)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultEnv]:
    with fault_env(tmp_path, monkeypatch, "faults", processes=2, concurrency=2, lease=LEASE) as env:
        yield env


def effects_db(tmp: Path) -> Path:
    db = tmp / "effects.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE effects(key TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE executions(key TEXT, pid INTEGER)")
    return db


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        return list(conn.execute(sql))


def push_duplicate(env: FaultEnv, run: Run, step: str) -> str:
    """LPUSH one more copy of ``step``'s message for ``run``; returns its delivery tag."""
    ref = env.client.store.reads.run_fields(run.id)["wf"]
    record = env.client.store.reads.plan_steps(ref)[step]
    tag = f"dup-{uuid.uuid4().hex}"
    message = record["message"].replace("@RUN@", run.id).replace("@TAG@", tag)
    message = message.replace("@PRI@", "9")  # kombu level 9: priority 0, the run's
    assert "@" not in message.replace(run.id, ""), "a placeholder was left unfilled"
    env.client.redis.lpush(priority_list(record["queue"], 0), message)
    return tag


def wait_consumed(env: FaultEnv, tags: list[str]) -> None:
    """Wait until workers took every tagged message and acknowledged it (late acks:
    a taken message sits in kombu's ``unacked`` hash until its task returned)."""

    def gone() -> bool:
        queued = "\n".join(m for q in priority_lists(env.queue) for m in env.r.lrange(q, 0, -1))
        return not any(t in queued or env.r.hexists("unacked", t) for t in tags)

    wait_until(gone, timeout=30)
    time.sleep(0.5)
    wait_until(gone, timeout=30)


def lost_attempts(events: list[dict[str, Any]], step: str) -> list[dict[str, Any]]:
    """RUNNING → RETRYING transitions of ``step`` recorded for a lost worker."""
    return [
        e
        for e in step_events(events, step)
        if e["from"] == "RUNNING" and e["to"] == "RETRYING" and "WorkerLostError" in str(e)
    ]


def test_killed_prefork_child_is_retried_and_its_effect_happens_once(env: FaultEnv) -> None:
    """SIGKILL the prefork child running a step: the expired lease is recorded as a
    lost attempt, the step runs again elsewhere, and its keyed effect happens once."""
    db = effects_db(env.tmp)
    wf = env.flow().step("act", EFFECT, queue=env.queue, retry=FAST_RETRY).build()
    run = env.client.submit(wf, {"db": str(db), "delay": 4.0})
    first = env.wait_where(run.id, attempt=1)
    assert first["ppid"] in env.worker_pids(), f"not a prefork child of the pool: {first}"
    os.kill(first["pid"], signal.SIGKILL)

    doc = env.wait(run)
    key = f"{run.id}/act"
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert query(db, "SELECT key FROM effects") == [(key,)], "the effect did not happen once"
    runs = env.executions(run.id)[key]
    assert runs >= 2, f"the step body ran {runs} time(s); the killed attempt must have run too"
    assert doc["steps"]["act"]["attempts"] == 2, doc["steps"]["act"]
    assert doc["steps"]["act"]["error"] is None
    events = run.events()
    assert lost_attempts(events, "act"), f"no RUNNING → RETRYING for WorkerLostError: {events}"
    assert path(events, "act") == [
        "PENDING", "QUEUED", "RUNNING", "RETRYING", "QUEUED", "RUNNING", "SUCCEEDED",
    ]  # fmt: skip
    second = env.wait_where(run.id, attempt=2)
    assert second["pid"] != first["pid"]
    assert all(w.process.poll() is None for w in env.pool.workers), "a worker died"
    assert env.leases_of(run.id) == []
    print(f"\nobserved: child kill, body ran {runs} times, attempts 2, effect rows 1")


def test_killed_worker_is_recovered_by_the_other_worker(env: FaultEnv) -> None:
    """SIGKILL the whole worker (main process and children) whose child runs a step:
    nothing of it is left to notice, so the other worker's sweeper must recover it."""
    db = effects_db(env.tmp)
    wf = env.flow().step("act", EFFECT, queue=env.queue, retry=FAST_RETRY).build()
    run = env.client.submit(wf, {"db": str(db), "delay": 4.0})
    first = env.wait_where(run.id, attempt=1)
    victims = [w for w in env.pool.workers if w.pid == first["ppid"]]
    assert len(victims) == 1, f"no worker is the parent of {first}: {env.worker_pids()}"
    victim = victims[0]
    (survivor,) = [w for w in env.pool.workers if w is not victim]
    victim.kill()
    assert victim.process.poll() is not None
    wait_until(lambda: not pool_processes([victim.hostname.split("@", 1)[0] + "@"]), timeout=10)

    doc = env.wait(run)
    key = f"{run.id}/act"
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert query(db, "SELECT key FROM effects") == [(key,)], "the effect did not happen once"
    runs = env.executions(run.id)[key]
    assert runs >= 2, f"the step body ran {runs} time(s)"
    assert doc["steps"]["act"]["attempts"] == 2, doc["steps"]["act"]
    assert lost_attempts(run.events(), "act"), run.events()
    second = env.wait_where(run.id, attempt=2)
    assert second["ppid"] == survivor.pid, f"attempt 2 ran at {second}, not under the survivor"
    assert survivor.process.poll() is None
    print(f"\nobserved: worker kill, body ran {runs} times, attempts 2, effect rows 1")


def test_killed_map_element_is_retried_alone(env: FaultEnv) -> None:
    """SIGKILL the child running one element of a map step: that element alone is
    recorded as lost and run again; every element's keyed effect happens once."""
    db = effects_db(env.tmp)
    wf = (
        env.flow()
        .step("seq", "tests.steps.basic:seq", queue=env.queue)
        .step("sq", ITEM, map="seq", queue=env.queue, retry=FAST_RETRY)
        .build()
    )
    run = env.client.submit(wf, {"db": str(db), "n": 3, "delay": 3.0})
    found: list[dict[str, Any]] = []

    def element_started() -> bool:
        found[:] = [w for w in env.where(run.id) if w["step"] == "sq" and w["index"] == 1]
        return bool(found)

    wait_until(element_started, timeout=WAIT)
    os.kill(found[0]["pid"], signal.SIGKILL)

    doc = env.wait(run)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == [0, 1, 4]
    keys = {f"{run.id}/sq/{i}" for i in range(3)}
    assert {k for (k,) in query(db, "SELECT key FROM effects")} == keys
    assert query(db, "SELECT count(*) FROM effects") == [(3,)]
    runs = env.executions(run.id)
    assert runs[f"{run.id}/sq/1"] >= 2, f"element 1 ran {runs[f'{run.id}/sq/1']} time(s)"
    assert runs[f"{run.id}/sq/0"] == runs[f"{run.id}/sq/2"] == 1, runs
    notes = [e for e in run.events() if e.get("step") == "sq" and e.get("retry")]
    assert [e["index"] for e in notes] == [1], notes
    assert "WorkerLostError" in notes[0]["error"]
    print(f"\nobserved: map element kill, element bodies ran {runs}")


def test_killed_holder_of_a_dependency_slot_gives_it_back(env: FaultEnv) -> None:
    """Three runs share a dependency of concurrency 1. The child holding its one slot
    is killed: the slot is given back with the lost attempt, and every run succeeds."""
    db = effects_db(env.tmp)
    wf = (
        env.flow(dependencies={"llm": {"concurrency": 1}})
        .step("act", EFFECT, queue=env.queue, retry=FAST_RETRY, dependency="llm")
        .build()
    )
    runs = [env.client.submit(wf, {"db": str(db), "delay": 1.5}) for _ in range(3)]
    started: list[dict[str, Any]] = []

    def one_started() -> bool:
        started[:] = [w for run in runs for w in env.where(run.id)]
        return bool(started)

    wait_until(one_started, timeout=WAIT)
    assert len(started) == 1, f"more than one holder of a single slot: {started}"
    os.kill(started[0]["pid"], signal.SIGKILL)

    docs = [env.wait(run) for run in runs]
    assert [d["state"] for d in docs] == ["SUCCEEDED"] * 3, [d["error"] for d in docs]
    keys = sorted(f"{run.id}/act" for run in runs)
    assert sorted(k for (k,) in query(db, "SELECT key FROM effects")) == keys
    attempts = sorted(d["steps"]["act"]["attempts"] for d in docs)
    assert attempts == [1, 1, 2], attempts
    assert env.r.zcard("orch:dep:llm:slots") == 0, "a slot outlived its attempt"
    runs_by_key = {k: n for run in runs for k, n in env.executions(run.id).items()}
    print(f"\nobserved: dependency slot holder kill, bodies ran {sorted(runs_by_key.values())}")


def test_poison_step_fails_the_run_after_max_attempts(env: FaultEnv) -> None:
    """A step that SIGKILLs its own process on every attempt fails the run after
    max_attempts lost attempts; it does not loop, and the pool keeps working."""
    wf = env.flow().step("poison", POISON, queue=env.queue, retry=FAST_RETRY).build()
    run = env.client.submit(wf, {})
    doc = env.wait(run, timeout=60)
    assert doc["state"] == "FAILED", doc
    st = doc["steps"]["poison"]
    assert st["state"] == "FAILED"
    assert st["attempts"] == 3, st
    assert st["error"] and "WorkerLostError" in st["error"], st
    assert doc["error"] and "WorkerLostError" in doc["error"], doc["error"]
    events = run.events()
    assert len(lost_attempts(events, "poison")) == 2, events
    assert path(events, "poison")[-2:] == ["RUNNING", "FAILED"]
    assert [e["to"] for e in run_events(events)] == ["PENDING", "RUNNING", "FAILED"]

    # Long enough for a loop to show: two more lease periods and sweeps.
    time.sleep(3 * LEASE)
    key = f"{run.id}/poison"
    runs = env.executions(run.id)
    assert runs == {key: 3}, f"the poison step ran {runs} times, expected 3"
    assert run.status() == doc, "the failed run changed"
    assert env.leases_of(run.id) == []
    assert env.delayed_of(run.id) == []
    assert sum(env.r.llen(q) for q in priority_lists(env.queue)) == 0

    assert all(w.process.poll() is None for w in env.pool.workers), "a worker died"
    ok = env.flow().step("ok", "tests.steps.basic:emit", queue=env.queue).build()
    after = env.client.submit(ok, {"value": 7})
    done = env.wait(after)
    assert done["state"] == "SUCCEEDED", done["error"]
    assert done["result"] == 7
    print(f"\nobserved: poison, body ran {runs[key]} times, attempts 3, run FAILED")


def test_duplicate_of_a_running_step_runs_nothing(env: FaultEnv) -> None:
    """a (held) and c join in d. While a runs, copies of a's and c's messages are
    pushed into the queue: a's body runs once, and the join fires once."""
    ups: dict[str, list[str]] = {"a": [], "c": [], "d": ["a", "c"]}
    flow = env.flow()
    for s, after in ups.items():
        flow.step(s, NODE, after=after, queue=env.queue)
    latch = f"test:latch:{uuid.uuid4().hex}"
    run = env.client.submit(flow.build(), {"weights": WEIGHTS, "holds": {"a": latch}})

    def a_running_c_done() -> bool:
        steps = run.status()["steps"]
        return steps["a"]["state"] == "RUNNING" and steps["c"]["state"] == "SUCCEEDED"

    wait_until(a_running_c_done, timeout=WAIT)
    tags = [push_duplicate(env, run, s) for s in ("a", "a", "c")]
    wait_consumed(env, tags)
    assert run.status()["steps"]["a"]["state"] == "RUNNING", "a ended before its copies came"
    env.client.redis.set(latch, "1", ex=60)  # a may finish now

    doc = env.wait(run)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == expected_output(ups, "d")
    runs = env.executions(run.id)
    assert runs == {f"{run.id}/{s}": 1 for s in ups}, f"bodies ran {runs}"
    events = run.events()
    for s in ups:
        assert len(entered(events, s, "RUNNING")) == 1, s
        assert len(entered(events, s, "SUCCEEDED")) == 1, s
    assert len(entered(events, "d", "QUEUED")) == 1, "the join fired more than once"
    assert [e["to"] for e in run_events(events)] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert doc["steps"]["a"]["attempts"] == 1
    assert env.client.store.reads.illegal_transitions() == {}
    print(f"\nobserved: duplicates, bodies ran {sorted(runs.values())}")


def test_runs_survive_a_graceful_redis_restart(env: FaultEnv) -> None:
    """Runs of a five-step chain are in flight when Redis stops and starts again on
    the same port (AOF on): every run still ends SUCCEEDED with the right result."""
    db = effects_db(env.tmp)
    names = ["s1", "s2", "s3", "s4", "s5"]
    flow = env.flow()
    for k, s in enumerate(names):
        flow.step(s, LINK, after=names[k - 1 : k], queue=env.queue, retry=FAST_RETRY)
    wf = flow.build()
    runs = [env.client.submit(wf, {"db": str(db), "delay": 0.3}) for _ in range(8)]

    # Restart once bodies are running and most of the work is still ahead.
    wait_until(lambda: query(db, "SELECT count(*) FROM executions")[0][0] >= 4, timeout=WAIT)
    unfinished = sum(1 for run in runs if run.state() not in TERMINAL)
    assert unfinished >= 4, "the runs finished before Redis could restart"
    port = env.server.port
    env.server.stop()
    env.server.start()
    assert env.server.port == port

    docs = [env.wait(run, timeout=90) for run in runs]
    bad = {d["id"]: (d["state"], d["error"]) for d in docs if d["state"] != "SUCCEEDED"}
    assert not bad, f"runs did not succeed after the restart: {bad}"
    assert [d["result"] for d in docs] == [5] * len(runs)
    counts: dict[str, int] = {}
    for (key,) in query(db, "SELECT key FROM executions"):
        counts[key] = counts.get(key, 0) + 1
    expected = {f"{run.id}/{s}" for run in runs for s in names}
    assert set(counts) == expected
    assert env.r.zcard("orch:leases") == 0, "a lease outlived its attempt"
    assert env.client.store.reads.illegal_transitions() == {}
    attempts = sorted(d["steps"][s]["attempts"] for d in docs for s in names)
    again = {k: n for k, n in counts.items() if n > 1}
    print(
        f"\nobserved: restart with {unfinished} of {len(runs)} runs unfinished; "
        f"{sum(counts.values())} executions of {len(expected)} steps; re-run {again}; "
        f"attempts > 1: {[a for a in attempts if a > 1]}"
    )


def test_heartbeat_keeps_a_long_step_alive(env: FaultEnv) -> None:
    """A step running 3.5 leases long keeps its lease by heartbeat: one attempt,
    no lost-worker retry."""
    wf = env.flow().step("long", "tests.steps.basic:sleepy", queue=env.queue).build()
    run = env.client.submit(wf, {"delay": 7.0})
    wait_until(lambda: bool(env.leases_of(run.id)), timeout=WAIT)
    (member,) = env.leases_of(run.id)
    time.sleep(2 * LEASE)
    assert env.leases_of(run.id) == [member], "the first attempt's lease was not kept"

    doc = env.wait(run)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["steps"]["long"]["attempts"] == 1, doc["steps"]["long"]
    events = run.events()
    assert path(events, "long") == ["PENDING", "QUEUED", "RUNNING", "SUCCEEDED"], events
    assert env.executions(run.id) == {f"{run.id}/long": 1}
    assert env.leases_of(run.id) == []
    print("\nobserved: heartbeat, body ran 1 time, attempts 1")
