"""Duplicate deliveries: a step whose outcome is recorded never runs again.

Brokers redeliver, and producers can publish twice. These tests push extra
copies of real step messages straight into the Celery queue list in Redis (the
same bytes the dispatch script writes, from the plan's template) and check
that bodies, joins and the run's end each happen exactly once.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from orchestrator import Client, Flow, Run
from orchestrator.messages import priority_list, priority_lists
from tests.conftest import executions
from tests.integration.helpers import (
    WAIT,
    WEIGHTS,
    DoneListener,
    entered,
    expect_executions,
    expected_output,
    node_flow,
    run_events,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("workers")]


def push_duplicate(client: Client, run: Run, step: str, index: int | None = None) -> str:
    """LPUSH one more copy of ``step``'s message for ``run``; returns its delivery tag."""
    ref = client.store.reads.run_fields(run.id)["wf"]
    record = client.store.reads.plan_steps(ref)[step]
    tag = f"dup-{uuid.uuid4().hex}"
    message = record["message"].replace("@RUN@", run.id).replace("@TAG@", tag)
    message = message.replace("@PRI@", "9")  # kombu level 9: priority 0, the run's
    if index is not None:
        message = message.replace("@IDX@", str(index))
    assert "@" not in message.replace(run.id, ""), "a placeholder was left unfilled"
    client.redis.lpush(priority_list(record["queue"], 0), message)
    return tag


def wait_consumed(r: redis.Redis, queue: str, tags: list[str]) -> None:
    """Wait until workers took every tagged message and acknowledged it.

    With late acks a message stays in kombu's ``unacked`` hash until its task
    returned, so once a tag is in neither the queue list nor ``unacked`` (seen
    twice, to cover the instant between the pop and the unacked write), the
    worker is done with it.
    """

    def gone() -> bool:
        queued = "\n".join(m for q in priority_lists(queue) for m in r.lrange(q, 0, -1))
        return not any(t in queued or r.hexists("unacked", t) for t in tags)

    wait_until(gone, timeout=30)
    time.sleep(0.5)
    wait_until(gone, timeout=30)


def test_duplicated_step_messages_run_nothing_twice(
    client: Client, r: redis.Redis, wf_name: str, done: DoneListener
) -> None:
    """a → b and c (held) join in d. While c runs, push copies of a and b (done)
    and of d (still waiting for c); after the run, push copies of every step."""
    before = client.store.reads.illegal_transitions()
    ups = {"a": [], "b": ["a"], "c": [], "d": ["b", "c"]}
    latch = f"test:latch:{uuid.uuid4().hex}"
    run_input = {"weights": WEIGHTS, "holds": {"c": latch}}
    run = client.submit(node_flow(wf_name, ups).build(), run_input)

    def b_done_c_running() -> bool:
        steps = run.status()["steps"]
        return steps["b"]["state"] == "SUCCEEDED" and steps["c"]["state"] == "RUNNING"

    wait_until(b_done_c_running, timeout=WAIT)
    early = [push_duplicate(client, run, s) for s in ("a", "b", "d", "a", "b", "d")]
    wait_consumed(r, "orch", early)
    assert run.status()["steps"]["d"]["state"] == "PENDING", "a copy of d ran before its join"
    r.set(latch, "1", ex=60)  # c may finish now

    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    late = [push_duplicate(client, run, s) for s in ups for _ in range(2)]
    wait_consumed(r, "orch", late)

    assert run.status() == doc, "a duplicate changed a finished run"
    assert doc["result"] == expected_output(ups, "d")
    expect_executions(r, run, list(ups))
    events = run.events()
    for s in ups:
        assert len(entered(events, s, "RUNNING")) == 1, s
        assert len(entered(events, s, "SUCCEEDED")) == 1, s
    assert len(entered(events, "d", "QUEUED")) == 1, "the join fired more than once"
    assert [e["to"] for e in run_events(events)] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert done.notices(run.id) == ["SUCCEEDED"]
    assert client.store.reads.illegal_transitions() == before


def test_duplicated_map_element_messages_run_nothing_twice(
    client: Client, r: redis.Redis, wf_name: str, done: DoneListener
) -> None:
    """seq → square (map of 5) → slow_sum. While slow_sum runs, push copies of
    every element; after the run, push them again."""
    wf = (
        Flow(wf_name, 1)
        .step("seq", "tests.steps.basic:seq")
        .step("square", "tests.steps.basic:square", map="seq", queue="embed")
        .step("slow_sum", "tests.steps.dag:slow_sum", after=["square"])
        .build()
    )
    run = client.submit(wf, {"n": 5, "delay": 2.0})
    wait_until(lambda: run.status()["steps"]["slow_sum"]["state"] == "RUNNING", timeout=WAIT)
    early = [push_duplicate(client, run, "square", i) for i in range(5)]
    early.append(push_duplicate(client, run, "seq"))
    wait_consumed(r, "embed", early[:-1])
    wait_consumed(r, "orch", early[-1:])

    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    late = [push_duplicate(client, run, "square", i) for i in range(5)]
    wait_consumed(r, "embed", late)

    assert doc["result"] == sum(i * i for i in range(5))
    assert doc["steps"]["square"]["output"] == [i * i for i in range(5)]
    expected = {f"{run.id}/seq": 1, f"{run.id}/slow_sum": 1}
    expected.update({f"{run.id}/square/{i}": 1 for i in range(5)})
    assert executions(r, run.id) == expected
    events = run.events()
    assert len(entered(events, "slow_sum", "QUEUED")) == 1
    assert [e["to"] for e in run_events(events)] == ["PENDING", "RUNNING", "SUCCEEDED"]
    assert done.notices(run.id) == ["SUCCEEDED"]
