"""`orch runs --stuck`: every accepted run ends, or is reported with a reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from orchestrator import Client, Flow
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration


def test_a_run_nobody_serves_is_reported_and_a_busy_one_is_not(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    orphan_queue = f"nobody-{uuid.uuid4().hex[:8]}"
    orphan = client.submit(
        Flow(wf_name, 1).step("lonely", "tests.steps.basic:noop", queue=orphan_queue).build(), {}
    )
    busy = client.submit(
        Flow(wf_name + "-busy", 1).step("nap", "tests.steps.basic:sleepy").build(), {"delay": 4}
    )
    deadline = time.monotonic() + 20
    while busy.status()["steps"]["nap"]["state"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.2)

    stuck = {d["id"]: d for d in client.runs(limit=50, stuck_after=1.0)}
    assert orphan.id in stuck
    reason = stuck[orphan.id]["stuck"]
    assert "queued steps lonely were not picked up" in reason
    assert f"no live worker consumes queue {orphan_queue}" in reason, reason
    assert f"orch worker -Q {orphan_queue}" in reason
    assert busy.id not in stuck, "a step holding a live lease is progress"
    patient = {d["id"] for d in client.runs(limit=50, stuck_after=3600)}
    assert orphan.id not in patient, "an hour has not passed: not stuck yet"

    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "runs", "--stuck", "--stuck-after", "1", "--json"],
        capture_output=True, text=True, env=dict(os.environ), check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    listed = {d["id"]: d for d in json.loads(proc.stdout)}
    assert orphan.id in listed and "stuck" in listed[orphan.id]
    assert busy.wait(30)["state"] == "SUCCEEDED"
    assert busy.id not in {d["id"] for d in client.runs(limit=50, stuck_after=0)}


def test_a_stuck_run_on_a_consumed_queue_is_not_blamed_on_its_queue(
    client: Client, redis_server: object, wf_name: str
) -> None:
    """A live worker's beat names the queue: the messages, not the consumers, are missing."""
    queue = f"beaten-{uuid.uuid4().hex[:8]}"
    presence = json.dumps({"queues": queue})
    client.store.upkeep.beat(f"ghost-{queue}@host", [queue], 1, presence)  # lives for 10 s
    run = client.submit(
        Flow(wf_name, 1).step("lost", "tests.steps.basic:noop", queue=queue).build(), {}
    )
    time.sleep(1.2)
    reason = {d["id"]: d for d in client.runs(limit=50, stuck_after=1.0)}[run.id]["stuck"]
    assert "no live worker consumes" not in reason
    assert "their queue has a live worker" in reason
