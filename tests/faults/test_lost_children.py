"""A pool child that dies is recorded lost at once, not after its lease.

The workers here run with a 60 s lease, longer than any wait in these tests:
a killed child's step can only run again in time because the worker's main
process noticed the child die and recorded its attempts lost itself. The
child's siblings keep their attempts: their leases are not touched.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Flow
from tests.faults.test_faults import (
    EFFECT,
    FAST_RETRY,
    FaultEnv,
    effects_db,
    fault_env,
    lost_attempts,
    query,
)
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration]

#: Long enough that a lease running out cannot explain a recovery within WAIT.
LONG_LEASE = 60.0
WAIT = 30.0


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultEnv]:
    with fault_env(
        tmp_path, monkeypatch, "children", processes=1, concurrency=3, lease=LONG_LEASE
    ) as env:
        yield env


def test_killed_child_is_recorded_lost_at_once_and_its_sibling_keeps_its_lease(
    env: FaultEnv,
) -> None:
    """Two runs on two children of one worker; one child is SIGKILLed. Its step is
    recorded lost as a dead process (not a silent lease) and runs again long before
    the lease could run out; the sibling's step keeps its one attempt and lease."""
    db = effects_db(env.tmp)
    victim_wf = Flow(f"victim-{uuid.uuid4().hex[:8]}", 1)
    victim_wf.step("act", EFFECT, queue=env.queue, retry=FAST_RETRY)
    sibling_wf = Flow(f"sibling-{uuid.uuid4().hex[:8]}", 1)
    sibling_wf.step("act", EFFECT, queue=env.queue, retry=FAST_RETRY)
    sibling = env.client.submit(sibling_wf.build(), {"db": str(db), "delay": 6.0})
    victim = env.client.submit(victim_wf.build(), {"db": str(db), "delay": 3.0})
    first = env.wait_where(victim.id, attempt=1, timeout=WAIT)
    other = env.wait_where(sibling.id, attempt=1, timeout=WAIT)
    assert first["pid"] != other["pid"], "both steps ran in one process"
    (sibling_lease,) = env.leases_of(sibling.id)
    os.kill(first["pid"], signal.SIGKILL)

    doc = env.wait(victim, timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["steps"]["act"]["attempts"] == 2, doc["steps"]["act"]
    lost = lost_attempts(victim.events(), "act")
    assert len(lost) == 1, victim.events()
    assert f"worker process (pid {first['pid']}) died" in str(lost[0]), lost[0]
    key = f"{victim.id}/act"
    assert (key,) in query(db, "SELECT key FROM effects")
    assert env.executions(victim.id) == {key: 2}

    assert env.leases_of(sibling.id) in ([sibling_lease], []), "the sibling's lease was touched"
    done = env.wait(sibling, timeout=WAIT)
    assert done["state"] == "SUCCEEDED", done["error"]
    assert done["steps"]["act"]["attempts"] == 1, "the sibling's step was taken over"
    assert env.executions(sibling.id) == {f"{sibling.id}/act": 1}
    assert query(db, "SELECT count(*) FROM effects") == [(2,)]
    assert all(w.process.poll() is None for w in env.pool.workers), "the worker died"


def test_killed_compensation_child_is_recorded_lost_at_once(env: FaultEnv) -> None:
    """The same holds for a compensation: its attempt is recorded lost as soon as its
    process dies, and the compensation runs again and completes."""
    db = effects_db(env.tmp)
    flow = Flow(f"saga-{uuid.uuid4().hex[:8]}", 1)
    flow.step("act", "tests.steps.basic:emit", queue=env.queue,
              compensate="tests.steps.faulty:slow_undo")  # fmt: skip
    flow.step("boom", "tests.steps.basic:boom", after=["act"], queue=env.queue)
    run = env.client.submit(flow.build(), {"value": 1, "db": str(db)})
    wait_until(lambda: any(w["step"] == "act" and w.get("undo") for w in env.where(run.id)),
               timeout=WAIT)  # fmt: skip
    (first,) = [w for w in env.where(run.id) if w.get("undo")]
    os.kill(first["pid"], signal.SIGKILL)
    doc = env.wait(run, timeout=WAIT)
    assert doc["state"] == "COMPENSATED", doc
    notes = [e for e in run.events() if "WorkerLostError" in str(e)]
    assert notes and f"(pid {first['pid']}) died" in str(notes[0]), run.events()
