"""An operator's last two levers on a run, against real Redis and workers.

- ``orch compensate RUN`` retries a compensation that failed for good, then
  carries the saga on: the run is reopened (an operator-only move, recorded),
  the remaining completed steps are undone, each once, latest first;
- ``cancel_grace``: after a cancel, a running step that does not stop by itself
  is interrupted (``StepCancelled`` in its body) when its grace period is over,
  and terminated (recorded FAILED, its process killed) when it ignores that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis

from orchestrator import Client, Flow, NotFoundError, OrchestratorError, Workflow
from tests.integration.test_sagas import (
    WAIT,
    C,
    Ledgers,
    run_moves,
    saga_whose_s1_undo_fails,
    transition_errors,
    undo_of,
    wait_for,
)
from workers.pool import WorkerPool


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=WAIT,
        check=False,
    )


# -- orch compensate ----------------------------------------------------------


def test_compensate_retries_the_failed_compensation_and_finishes_the_saga(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    run = client.submit(saga_whose_s1_undo_fails(wf_name, "undo_s1_until_fixed"), {})
    doc = run.wait(WAIT)
    assert doc["state"] == "COMPENSATION_FAILED", doc
    assert doc["steps"]["s1"]["state"] == "COMPENSATION_FAILED"
    assert r.ttl(client.store.keys.run(run.id)) > 0, "a finished run's keys expire"
    with pytest.raises(OrchestratorError, match="is COMPENSATION_FAILED"):
        client.retry(run.id)  # resume is for FAILED runs; this one needs compensate

    r.set(f"sagac:fixed:{run.id}", "1")
    again = client.compensate(run.id)
    assert again.id == run.id
    assert run.state() in ("COMPENSATING", "COMPENSATED")
    doc = run.wait(WAIT)

    assert doc["state"] == "COMPENSATED", doc
    cause = "step s3 failed: NonRetryableError: s3 cannot go on"
    assert doc["error"] == cause, "the run's own failure is its error again"
    assert doc["finished_at"] is not None
    states = {s: doc["steps"][s]["state"] for s in doc["steps"]}
    assert states == {"s0": "COMPENSATED", "s1": "COMPENSATED", "s2": "COMPENSATED", "s3": "FAILED"}
    led = Ledgers.read(r, run.id)
    assert led.bad == []
    assert led.undone == ["s2", "s1", "s0"], "each undone once, latest completion first"
    assert led.undo_calls == {"s2": 1, "s1": 3, "s0": 1}, led.undo_calls
    events = run.events()
    assert transition_errors(events) == [], events
    assert run_moves(events)[-4:] == [
        ("RUNNING", "COMPENSATING"),
        ("COMPENSATING", "COMPENSATION_FAILED"),
        ("COMPENSATION_FAILED", "COMPENSATING"),
        ("COMPENSATING", "COMPENSATED"),
    ]
    saga = [(e["step"], e["compensation"], e["attempt"]) for e in events if e.get("compensation")]
    assert saga == [
        ("s2", "started", 1),
        ("s1", "started", 1), ("s1", "retry", 1), ("s1", "started", 2),
        ("s1", "started", 1),  # reopened: a fresh set of attempts
        ("s0", "started", 1),
    ]  # fmt: skip
    assert r.ttl(client.store.keys.run(run.id)) > 0, "finished again: its keys expire again"

    with pytest.raises(OrchestratorError, match="is COMPENSATED with no failed compensation"):
        client.compensate(run.id)
    with pytest.raises(NotFoundError):
        client.compensate("0123456789abcdef")


def test_compensate_a_cancelled_run_from_the_cli(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step(
            "s0",
            f"{C}:work",
            compensate=f"{C}:undo_s0_until_fixed",
            retry={"max_attempts": 1},
        )
        .step("s1", wait_for="go", after=["s0"])
        .build()
    )
    run = client.submit(wf, {})
    wait_for(lambda: run.status()["steps"]["s1"]["state"] == "WAITING", "s1 waiting")
    run.cancel("operator")
    doc = run.wait(WAIT)
    assert doc["state"] == "CANCELLED"
    assert doc["error"] == "compensation of step s0 failed: RuntimeError: cannot undo s0 yet"
    assert doc["steps"]["s0"]["state"] == "COMPENSATION_FAILED"

    r.set(f"sagac:fixed:{run.id}", "1")
    out = run_cli("compensate", run.id, "--wait", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["state"] == "CANCELLED" and doc["error"] is None, doc
    assert doc["steps"]["s0"]["state"] == "COMPENSATED"
    assert Ledgers.read(r, run.id).undone == ["s0"]
    assert run_moves(run.events())[-2:] == [
        ("CANCELLED", "CANCELLING"),
        ("CANCELLING", "CANCELLED"),
    ]
    assert transition_errors(run.events()) == []

    out = run_cli("compensate", run.id)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert "no failed compensation" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("compensate", "nosuchrun")
    assert out.returncode == 2 and "not found" in out.stderr, out.stderr


# -- cancel_grace -------------------------------------------------------------


def graced(name: str, body: str, grace: float | None) -> Workflow:
    return (
        Flow(name, 1, cancel_grace=grace)
        .step("s0", f"{C}:work", compensate=undo_of("s0"))
        .step("s1", f"{C}:{body}", after=["s0"], compensate=undo_of("s1"))
        .build()
    )


def test_cancel_grace_interrupts_a_step_that_does_not_stop_by_itself(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    run = client.submit(graced(wf_name, "interruptible", 1.0), {"hold": 45.0})
    wait_for(lambda: "s1" in Ledgers.read(r, run.id).executions, "s1 started")
    run.cancel("operator")
    doc = run.wait(WAIT)

    assert doc["state"] == "CANCELLED", doc
    s1 = doc["steps"]["s1"]
    assert s1["state"] == "FAILED"
    reason = "its run was cancelled and its cancel_grace of 1s ran out"
    assert s1["error"] == f"StepCancelled: {reason}"
    assert r.lrange(f"sagac:interrupted:{run.id}", 0, -1) == [reason]
    assert r.lrange(f"sagac:cleanup:{run.id}", 0, -1) == ["s1"], "its finally block ran"
    led = Ledgers.read(r, run.id)
    assert led.undone == ["s0"], "s1 never completed, so only s0 is undone"
    assert "s1" not in r.lrange(f"sagac:effects:{run.id}", 0, -1)
    assert s1["attempts"] == 1, "an interrupted step is not retried"
    assert transition_errors(run.events()) == []


def test_a_step_that_ignores_its_interrupt_is_terminated(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    run = client.submit(graced(wf_name, "stubborn", 0.5), {"hold": 45.0})
    wait_for(lambda: r.llen(f"sagac:where:{run.id}") == 1, "s1 started")
    pid = json.loads(r.lindex(f"sagac:where:{run.id}", 0))["pid"]
    run.cancel("operator")
    doc = run.wait(WAIT)

    assert doc["state"] == "CANCELLED", doc
    s1 = doc["steps"]["s1"]
    assert s1["state"] == "FAILED"
    assert s1["error"] == "StepCancelled: terminated: still running 1s after its run was cancelled"
    assert r.lrange(f"sagac:interrupted:{run.id}", 0, -1) == ["ignored"]
    wait_for(lambda: not _alive(pid), "the stubborn process was killed", timeout=10)
    assert Ledgers.read(r, run.id).undone == ["s0"]
    assert transition_errors(run.events()) == []
    # The pool replaced the killed process and serves new runs.
    plain = Flow(f"{wf_name}-after", 1).step("s0", f"{C}:work").build()
    assert all(client.submit(plain, {}).wait(WAIT)["state"] == "SUCCEEDED" for _ in range(4))


def test_without_a_grace_a_running_step_is_not_interrupted(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    run = client.submit(graced(wf_name, "interruptible", None), {"hold": 2.5})
    wait_for(lambda: "s1" in Ledgers.read(r, run.id).executions, "s1 started")
    run.cancel("operator")
    doc = run.wait(WAIT)
    assert doc["state"] == "CANCELLED"
    assert doc["steps"]["s1"]["state"] == "COMPENSATED", "it ran to its end, then was undone"
    assert r.llen(f"sagac:interrupted:{run.id}") == 0
    assert Ledgers.read(r, run.id).undone == ["s1", "s0"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
