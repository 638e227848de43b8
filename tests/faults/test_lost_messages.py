"""A queued step whose message was lost is dispatched again (the reconciler).

Redis killed at the wrong moment can lose a step's message while the step
stays QUEUED. These tests lose one on purpose: every worker process is kept
busy by a blocker run (so with late acks and a prefetch of one per process no
worker takes another message), the victim run is submitted, and its message
is taken out of the queue before any worker could see it. Once the blockers
end, nothing of the victim is alive: no attempt, no delayed retry, no
message. Without the reconciler it stays QUEUED forever; with it
(``ORCH_REDISPATCH_AFTER`` 3 s here) the run finishes, and the old message,
should it turn up, runs nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Flow, Run
from orchestrator.messages import priority_list
from tests.faults.test_faults import FaultEnv, fault_env, wait_consumed
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration]

AFTER = 3.0
WAIT = 30.0
PROCESSES, CONCURRENCY = 2, 2


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultEnv]:
    with fault_env(
        tmp_path,
        monkeypatch,
        "lost",
        processes=PROCESSES,
        concurrency=CONCURRENCY,
        lease=2.0,
        env={"ORCH_REDISPATCH_AFTER": f"{AFTER:g}"},
        redis_args=("--appendfsync", "always"),
    ) as env:
        yield env


def occupy_every_process(env: FaultEnv, seconds: float) -> Run:
    """A run of one parallel sleeper per worker process, all RUNNING when this returns."""
    flow = Flow(f"blocker-{uuid.uuid4().hex[:8]}", 1)
    names = [f"b{k}" for k in range(PROCESSES * CONCURRENCY)]
    for name in names:
        flow.step(name, "tests.steps.basic:sleepy", queue=env.queue)
    run = env.client.submit(flow.build(), {"delay": seconds})

    def all_running() -> bool:
        steps = run.status()["steps"]
        return all(steps[n]["state"] == "RUNNING" for n in names)

    wait_until(all_running, timeout=WAIT)
    return run


def take_message(env: FaultEnv, run: Run) -> str:
    """Remove the run's message from its queue, as a crash would have; returns it."""
    listed = kombu_list(env)
    (message,) = [m for m in env.r.lrange(listed, 0, -1) if run.id in m]
    assert env.r.lrem(listed, 1, message) == 1
    return message


def kombu_list(env: FaultEnv) -> str:
    """The kombu list of the env's queue that runs of the default priority (0) go to."""
    return priority_list(env.queue, 0)


def redispatches(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if "redispatched" in e]


def victim_flow(env: FaultEnv) -> Flow:
    flow = Flow(f"victim-{uuid.uuid4().hex[:8]}", 1)
    flow.step("first", "tests.steps.basic:emit", queue=env.queue)
    flow.step("second", "tests.steps.basic:emit", after=["first"], queue=env.queue)
    return flow


def test_a_deleted_queued_message_is_sent_again_and_the_old_one_runs_nothing(
    env: FaultEnv,
) -> None:
    blocker = occupy_every_process(env, 3.0)
    victim = env.client.submit(victim_flow(env).build(), {"value": 41})
    message = take_message(env, victim)
    assert victim.status()["steps"]["first"]["state"] == "QUEUED"

    doc = env.wait(victim, timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == 41
    sent = redispatches(victim.events())
    assert [(e["step"], e.get("index")) for e in sent] == [("first", None)], sent
    assert env.wait(blocker, timeout=WAIT)["state"] == "SUCCEEDED"
    # A busy run is not sent again (on a slow machine a message a worker took may
    # wait longer than the bound for its claim; sent again, it would run nothing).
    assert set(env.executions(blocker.id).values()) == {1}, env.executions(blocker.id)

    # The lost message turns up after all: its claim finds the step done.
    tag = f"late-{uuid.uuid4().hex}"
    env.r.lpush(kombu_list(env), message.replace('"delivery_tag":"', f'"delivery_tag":"{tag}', 1))
    wait_consumed(env, [tag])
    assert victim.status() == doc, "the late message changed the finished run"
    assert sorted(env.executions(victim.id)) == [f"{victim.id}/first", f"{victim.id}/second"]
    assert set(env.executions(victim.id).values()) == {1}, env.executions(victim.id)
    assert env.r.scard("orch:live") == 0, "ended runs are still looked through"


def test_a_message_popped_when_redis_was_killed_is_sent_again(env: FaultEnv) -> None:
    """kill -9 of Redis (appendfsync always) just after a consumer popped a message
    and before kombu recorded it: the run still finishes, and so do the runs that
    were in flight."""
    blocker = occupy_every_process(env, 3.0)
    victim = env.client.submit(victim_flow(env).build(), {"value": 1})
    listed = kombu_list(env)
    (message,) = [m for m in env.r.lrange(listed, 0, -1) if victim.id in m]
    assert env.r.rpop(listed) == message  # popped, and never recorded anywhere
    env.server.kill()
    env.server.start()

    doc = env.wait(victim, timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == 1
    assert len(redispatches(victim.events())) == 1, victim.events()
    assert env.wait(blocker, timeout=WAIT)["state"] == "SUCCEEDED"
    assert env.executions(victim.id) == {f"{victim.id}/first": 1, f"{victim.id}/second": 1}
    assert all(w.process.poll() is None for w in env.pool.workers), "a worker died"
