"""Durable sleeps and run deadlines with real workers: across a worker restart, across a
Redis restart (AOF on), and a deadline that fires while a step waits for approval.

Every time here is Redis ``TIME``, the engine's clock; the waits are bounded polls,
never timing assertions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Flow, Run
from orchestrator.clock import redis_now
from orchestrator.runs import TERMINAL
from tests.integration.helpers import Cluster, private_cluster, wait_until

pytestmark = [pytest.mark.integration]

EMIT = "tests.steps.basic:emit"
TOTAL = "tests.steps.basic:total"
EFFECT = "tests.steps.saga:effect"
UNDO = "tests.steps.saga:undo"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    queue = f"time-{uuid.uuid4().hex[:8]}"
    with private_cluster(tmp_path, queue=queue, processes=1, concurrency=1, lease=3) as c:
        yield c


def nap_flow(cluster: Cluster, seconds: float) -> Flow:
    """emit -> nap (a durable sleep) -> total, on the cluster's queue."""
    flow = Flow(f"nap-{uuid.uuid4().hex[:8]}", 1)
    flow.step("a", EMIT, queue=cluster.queue)
    flow.step("nap", sleep=seconds, after=["a"])
    return flow.step("b", TOTAL, after=["nap"], queue=cluster.queue)


def sleeping(cluster: Cluster, run: Run) -> dict[str, Any]:
    """Wait until the run's nap step sleeps; its status entry (with wake_at)."""
    wait_until(lambda: run.status()["steps"]["nap"]["state"] == "WAITING", timeout=60)
    nap = run.status()["steps"]["nap"]
    assert nap["wake_at"] is not None
    assert cluster.r.llen(cluster.queue) == 0, "a sleeping step has no message"
    leases = [m for m in cluster.r.zrange("orch:leases", 0, -1) if m.startswith(run.id)]
    assert leases == [], "a sleeping step holds no worker"
    return nap


def finished(run: Run, timeout: float = 90) -> dict[str, Any]:
    wait_until(lambda: run.state() in TERMINAL, timeout=timeout)
    return run.status()


def wake_time(cluster: Cluster, run: Run) -> float:
    return float(cluster.r.hget(f"orch:run:{run.id}", "nap.wake") or 0)


def test_a_sleep_outlasts_its_workers_and_wakes_on_a_new_one(cluster: Cluster) -> None:
    run = cluster.client.submit(nap_flow(cluster, 6).build())
    nap = sleeping(cluster, run)
    for worker in cluster.pool.workers:
        worker.kill()  # no worker is left: nothing but Redis knows of the sleep
    assert not any(w.process.poll() is None for w in cluster.pool.workers)
    wake = wake_time(cluster, run)
    wait_until(lambda: redis_now(cluster.r) > wake + 1.5, timeout=30)
    assert run.status()["steps"]["nap"]["state"] == "WAITING", "nobody was up to wake it"
    cluster.pool.start([cluster.queue], concurrency=1)
    doc = finished(run)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["steps"]["nap"]["state"] == "SUCCEEDED"
    assert doc["steps"]["nap"]["wake_at"] == nap["wake_at"]
    assert doc["steps"]["nap"]["output"] == wake
    assert doc["steps"]["b"]["state"] == "SUCCEEDED"


def test_a_sleep_survives_a_redis_crash_with_aof(cluster: Cluster) -> None:
    run = cluster.client.submit(nap_flow(cluster, 6).build())
    nap = sleeping(cluster, run)
    wake = wake_time(cluster, run)
    port = cluster.server.port
    cluster.server.kill()  # SIGKILL: only the append-only file keeps the sleep
    cluster.server.start()
    assert cluster.server.port == port
    assert run.status()["steps"]["nap"]["wake_at"] == nap["wake_at"]
    assert cluster.r.zscore("orch:timeouts", f"{run.id}|nap") == wake
    doc = finished(run)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["steps"]["nap"]["output"] == wake
    assert cluster.client.store.reads.illegal_transitions() == {}


def test_a_deadline_cancels_a_run_waiting_for_approval_and_compensates(cluster: Cluster) -> None:
    flow = Flow(f"late-{uuid.uuid4().hex[:8]}", 1, deadline="10s")
    flow.step("book", EFFECT, queue=cluster.queue, effects=True, compensate=UNDO)
    flow.step("approve", wait_for="approval", after=["book"])
    flow.step("ship", EFFECT, after=["approve"], queue=cluster.queue)
    run = cluster.client.submit(flow.build())
    assert run.status()["deadline_at"] is not None
    wait_until(lambda: run.status()["steps"]["approve"]["state"] == "WAITING", timeout=60)
    doc = finished(run)
    assert doc["state"] == "CANCELLED"
    assert doc["error"] == "deadline of 10s passed"
    assert doc["steps"]["book"]["state"] == "COMPENSATED"
    assert doc["steps"]["ship"]["state"] == "PENDING"
    undone = cluster.r.lrange(f"saga:undone:{run.id}", 0, -1)
    assert len(undone) == 1 and undone[0].startswith("book:"), undone
    reasons = [e.get("reason") for e in run.events() if e.get("to") == "CANCELLING"]
    assert reasons == ["deadline of 10s passed"]
    assert cluster.r.zscore("orch:deadlines", run.id) is None


def test_submit_deadline_overrides_the_workflow_and_an_early_end_keeps_the_run(
    cluster: Cluster,
) -> None:
    flow = Flow(f"quick-{uuid.uuid4().hex[:8]}", 1, deadline="1s")
    wf = flow.step("a", EMIT, queue=cluster.queue).build()
    run = cluster.client.submit(wf, deadline="1h")
    doc = finished(run)
    assert doc["state"] == "SUCCEEDED"
    fields = cluster.r.hgetall(f"orch:run:{run.id}")
    assert float(fields["deadline"]) == 3600.0
    assert cluster.r.zscore("orch:deadlines", run.id) is None
