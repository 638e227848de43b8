"""The runner: a worker runs a run's next steps from one Celery message (claiming.lua).

Against the session's real workers (2 worker processes × 2 children, so 4 on
queue ``orch``) and, for the kill test, a private Redis and a one-process pool:

- a chain runs from its first step's message, with no broker hop;
- a fan-out keeps its parallelism: as many lanes as there are processes, each
  draining the run's ready list, far fewer messages than branches;
- a step with a time limit always gets its own message (Celery limits a task);
- a runner yields after ``ORCH_RUNNER_SLICE`` seconds: its next step goes back
  to the broker as a message;
- a runner killed mid-drain strands nothing: its lease runs out, the retry
  drains the ready list, each branch is recorded once;
- a cancel stops the drain, and a finished run leaves no ready list behind.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import redis

from orchestrator import Client, Flow, Workflow
from tests.integration.helpers import private_cluster, wait_until
from workers.pool import WorkerPool

T = "tests.steps.runner"
WAIT = 60.0


def traces(r: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(f"runner:trace:{run_id}", 0, -1)]


def executions(r: redis.Redis, run_id: str) -> dict[str, int]:
    return {k: int(v) for k, v in r.hgetall(f"runner:exec:{run_id}").items()}


def max_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    best = now = 0
    for _, delta in points:
        now += delta
        best = max(best, now)
    return best


def chain(name: str, n: int, fields: dict[int, dict[str, Any]] | None = None) -> Workflow:
    flow = Flow(name, 1)
    for k in range(n):
        extra = (fields or {}).get(k, {})
        flow.step(f"s{k}", f"{T}:traced", after=[f"s{k - 1}"] if k else [], **extra)
    return flow.build()


def fan_out(name: str, width: int) -> Workflow:
    flow = Flow(name, 1).step("root", f"{T}:traced")
    for k in range(width):
        flow.step(f"b{k}", f"{T}:traced", after=["root"])
    return flow.step("join", f"{T}:traced", after=[f"b{k}" for k in range(width)]).build()


def test_a_chain_runs_from_its_first_message(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str
) -> None:
    run = client.submit(chain(wf_name, 10), {})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED" and doc["result"] == "s9"
    seen = traces(r, run.id)
    assert [t["step"] for t in seen] == [f"s{k}" for k in range(10)]
    assert {t["task"] for t in seen} == {f"{run.id}-s0"}, "one Celery task ran the chain"
    assert executions(r, run.id) == {f"s{k}": 1 for k in range(10)}
    assert r.exists(client.store.keys.ready(run.id, "orch")) == 0


def test_a_fan_out_keeps_its_parallelism_with_few_messages(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str
) -> None:
    width = 20
    delays = {f"b{k}": 0.1 for k in range(width)}  # a lane's share stays within its 1 s slice
    run = client.submit(fan_out(wf_name, width), {"delays": delays})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    seen = {t["step"]: t for t in traces(r, run.id)}
    branches = [seen[f"b{k}"] for k in range(width)]
    lanes = {t["task"] for t in branches}
    assert 2 <= len(lanes) <= 4, f"{len(lanes)} messages ran the 20 branches (4 processes)"
    assert max_overlap([(t["t0"], t["t1"]) for t in branches]) >= 2
    assert seen["join"]["task"] in lanes, "the join ran in the lane that finished last"
    assert executions(r, run.id) == {s: 1 for s in seen}
    assert r.exists(client.store.keys.ready(run.id, "orch")) == 0


def test_a_step_with_a_time_limit_gets_its_own_message(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str
) -> None:
    wf = chain(wf_name, 4, {1: {"retry": {"timeout": 20}}})
    run = client.submit(wf, {})
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    tasks = {t["step"]: t["task"] for t in traces(r, run.id)}
    assert tasks == {
        "s0": f"{run.id}-s0",
        "s1": f"{run.id}-s1",  # its own message, under its own time limit
        "s2": f"{run.id}-s2",  # s1's task had a limit, so it handed nothing on
        "s3": f"{run.id}-s2",
    }


def test_a_runner_yields_after_its_slice(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str
) -> None:
    run = client.submit(chain(wf_name, 6), {"delays": {f"s{k}": 0.45 for k in range(6)}})
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    tasks = [t["task"] for t in traces(r, run.id)]
    lanes = list(dict.fromkeys(tasks))
    assert tasks[0] == f"{run.id}-s0"
    # A 1 s slice covers two or three 0.45 s steps: the chain took 2 to 3 messages,
    # each running consecutive steps.
    assert 2 <= len(lanes) <= 3, tasks
    assert tasks == sorted(tasks, key=lanes.index), tasks


def test_cancel_stops_the_drain(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str
) -> None:
    width = 30
    run = client.submit(fan_out(wf_name, width), {"delays": {f"b{k}": 0.2 for k in range(width)}})
    wait_until(lambda: len(traces(r, run.id)) >= 4)
    run.cancel("enough")
    doc = run.wait(WAIT)
    assert doc["state"] == "CANCELLED"
    events = run.events()
    cancelling = next(e["t"] for e in events if "step" not in e and e["to"] == "CANCELLING")
    late = [e for e in events if e.get("to") == "RUNNING" and "step" in e and e["t"] > cancelling]
    assert late == [], "no branch was claimed after the cancel"
    ran = sum(1 for k in range(width) if doc["steps"][f"b{k}"]["state"] == "SUCCEEDED")
    assert 3 <= ran < width
    assert r.exists(client.store.keys.ready(run.id, "orch")) == 0


def test_a_killed_runner_strands_nothing(tmp_path: Path) -> None:
    with private_cluster(tmp_path, queue="orch", processes=1, concurrency=1, lease=2.0) as c:
        wf = fan_out("runner-kill", 8)
        run = c.client.submit(wf, {"delays": {f"b{k}": 0.4 for k in range(8)}})
        where = f"runner:where:{run.id}"
        wait_until(lambda: c.r.llen(where) >= 3, timeout=WAIT)
        victim = json.loads(c.r.lindex(where, 2))
        os.kill(victim["pid"], signal.SIGKILL)
        killed_at = time.time()
        doc = run.wait(WAIT)

        assert doc["state"] == "SUCCEEDED", doc["error"]
        runs = executions(c.r, run.id)
        assert runs.pop(victim["step"]) == 2, "the killed step ran again"
        assert runs == {s: 1 for s in runs} and len(runs) == 9  # root, 7 branches, join
        assert doc["steps"][victim["step"]]["attempts"] == 2
        after = [t for t in traces(c.r, run.id) if t["t0"] > killed_at]
        assert after, "the ready list was drained after the kill"
        assert c.r.exists(c.client.store.keys.ready(run.id, "orch")) == 0
