"""A worker SIGKILLed while the queueing model holds work back strands nothing.

One worker of two processes (so a list takes two messages, and the rest of a
busy queue is held back per fairness key), short leases. Runs of two tenants,
two of them per user under a concurrency limit of one, each a fan-out with a
join. A process is killed in the middle of a step: its lease runs out, the
step runs again, and in the end every run succeeded, every step's outcome was
recorded once (only the killed step's body ran twice), the join ran once per
run, and nothing is left held, queued or holding a slot.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from orchestrator import Flow
from tests.integration.helpers import private_cluster, wait_until

pytestmark = pytest.mark.integration

T = "tests.steps.runner:traced"
WAIT = 120.0


def test_a_killed_worker_strands_nothing_held_back_or_limited(tmp_path: Path) -> None:
    flow = Flow(
        "queueing-kill",
        1,
        fairness={"key": "input.tenant"},
        concurrency={"key": "input.user", "max_runs": 1},
    ).step("root", T, queue="qk")
    for k in range(4):
        flow.step(f"b{k}", T, queue="qk", after=["root"])
    wf = flow.step("join", T, queue="qk", after=[f"b{k}" for k in range(4)]).build()
    delays = {"delays": {f"b{k}": 0.3 for k in range(4)}}
    with private_cluster(tmp_path, queue="qk", processes=1, concurrency=2, lease=2.0) as c:
        runs = [
            c.client.submit(wf, {"tenant": tenant, "user": f"{tenant}-{u}", **delays})
            for tenant in ("A", "B")
            for u in (0, 0, 1)
        ]
        first = runs[0]
        where = f"runner:where:{first.id}"
        wait_until(lambda: c.r.llen(where) >= 2, timeout=WAIT)
        victim = json.loads(c.r.lindex(where, 1))
        os.kill(victim["pid"], signal.SIGKILL)
        docs = [r.wait(WAIT) for r in runs]

        assert [d["state"] for d in docs] == ["SUCCEEDED"] * len(runs)
        for run, doc in zip(runs, docs, strict=True):
            ran = {k: int(v) for k, v in c.r.hgetall(f"runner:exec:{run.id}").items()}
            if run.id == first.id:
                assert ran.pop(victim["step"]) == 2, "the killed step ran again"
                assert doc["steps"][victim["step"]]["attempts"] == 2
            assert all(v == 1 for v in ran.values()), ran
            assert doc["steps"]["join"]["attempts"] == 1
        keys = c.client.store.keys
        assert c.r.scard(keys.fair_lists) == 0, "work left held back"
        assert c.r.zcard(keys.backlog("queueing-kill")) == 0
        for user in ("A-0", "A-1", "B-0", "B-1"):
            assert c.r.zcard(keys.run_slots(wf.ref, user)) == 0
            assert c.r.llen(keys.run_waiting(wf.ref, user)) == 0
        # The second run of each user waited for the first to end.
        for a, b in ((docs[0], docs[1]), (docs[3], docs[4])):
            assert b["steps"]["root"]["started_at"] >= a["finished_at"]
