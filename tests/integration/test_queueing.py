"""The queueing model end to end, on a private Redis and one worker process of one child.

One consumer makes the order in which work is taken the whole story:

- a high-priority run submitted behind a backlog of low-priority runs (two-step
  chains, so runner lanes are in play) finishes before every low-priority run
  that had not started: the running lane yields, and the worker takes the
  higher priority's list first;
- a tenant's burst does not queue ahead of another tenant: the second tenant's
  runs start within a few steps of their submit, not after the whole burst;
- admission control refuses the run over ``max_queued`` and accepts again as
  runs start.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator import AdmissionRefusedError, Flow, Workflow
from tests.integration.helpers import Cluster, private_cluster, wait_until

SLEEPY = "tests.steps.basic:sleepy"
WAIT = 120.0


@pytest.fixture
def one_consumer(tmp_path: Path) -> Iterator[Cluster]:
    with private_cluster(tmp_path, queue="queueing", processes=1, concurrency=1, lease=10) as c:
        yield c


def chain(name: str, **options: Any) -> Workflow:
    return (
        Flow(name, 1, **options)
        .step("s0", SLEEPY, queue="queueing")
        .step("s1", SLEEPY, queue="queueing", after=["s0"])
        .build()
    )


def started(doc: dict[str, Any], step: str = "s0") -> float | None:
    at = doc["steps"][step]["started_at"]
    return datetime.fromisoformat(at).timestamp() if at else None


def finished(doc: dict[str, Any]) -> float:
    return datetime.fromisoformat(doc["finished_at"]).timestamp()


def test_a_high_priority_run_overtakes_the_low_priority_backlog(one_consumer: Cluster) -> None:
    c = one_consumer
    wf = chain("prio-chain")
    low = [c.client.submit(wf, {"delay": 0.03}) for _ in range(40)]
    wait_until(lambda: started(low[1].status()) is not None, timeout=WAIT)
    high = c.client.submit(wf, {"delay": 0.03}, priority=8)
    waiting = [r for r in low if started(r.status()) is None]
    assert len(waiting) >= 10, "the backlog drained before the high-priority submit"
    done = high.wait(WAIT)
    assert done["state"] == "SUCCEEDED" and done["priority"] == 8
    docs = [r.wait(WAIT) for r in waiting]
    assert all(d["state"] == "SUCCEEDED" for d in docs)
    overtaken = [d["id"] for d in docs if (started(d) or 0) < finished(done)]
    assert overtaken == [], "low-priority runs started before the high one finished"


def test_a_tenants_burst_does_not_queue_ahead_of_another_tenant(one_consumer: Cluster) -> None:
    c = one_consumer
    wf = (
        Flow("fair-burst", 1, fairness={"key": "input.tenant"})
        .step("s0", SLEEPY, queue="queueing")
        .build()
    )
    burst = [c.client.submit(wf, {"tenant": "A", "delay": 0.02}) for _ in range(40)]
    quiet = [c.client.submit(wf, {"tenant": "B", "delay": 0.02}) for _ in range(4)]
    docs = {r.id: r.wait(WAIT) for r in burst + quiet}
    assert all(d["state"] == "SUCCEEDED" for d in docs.values())
    assert {docs[r.id]["fairness_key"] for r in quiet} == {"B"}
    order = sorted(docs, key=lambda run_id: started(docs[run_id]) or 0)
    last_b = max(order.index(r.id) for r in quiet)
    # Round-robin: B's 4 runs are taken within the next ~8 starts, not after A's 40.
    assert last_b < 20, f"B's last run started {last_b}th of {len(order)}"
    assert c.r.scard(c.client.store.keys.fair_lists) == 0, "nothing is left held"


def test_admission_refuses_over_the_backlog_and_accepts_as_runs_start(
    one_consumer: Cluster,
) -> None:
    c = one_consumer
    wf = chain("admit-chain", max_queued=3)
    c.client.submit(wf, {"delay": 0.5}, key="first")
    runs = [c.client.submit(wf, {"delay": 0.5}) for _ in range(2)]
    # The first run may have started already; fill the backlog to its limit either way.
    while True:
        try:
            runs.append(c.client.submit(wf, {"delay": 0.5}))
        except AdmissionRefusedError as refused:
            assert (refused.scope, refused.limit, refused.queued) == ("workflow", 3, 3)
            break
        assert len(runs) < 10, "admission never refused"
    assert c.client.submit(wf, {"delay": 0.5}, key="first").id, "an accepted key is never refused"
    wait_until(lambda: c.r.zcard(c.client.store.keys.backlog("admit-chain")) < 3, timeout=WAIT)
    c.client.submit(wf, {"delay": 0.01})
