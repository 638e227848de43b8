"""Human approval: `wait_for` steps wait without holding a worker, until a signal or a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from orchestrator import Client, Flow, NotFoundError, OrchestratorError, SpecError, Workflow
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

B = "tests.steps.basic"


def approval_flow(name: str, *, timeout: str = "60s", on_timeout: str = "fail") -> Workflow:
    trigger = "none_failed" if on_timeout == "skip" else "all_succeeded"
    return (
        Flow(name, 1)
        .step("emit", f"{B}:emit")
        .step("review", wait_for="approval", after=["emit"], timeout=timeout, on_timeout=on_timeout)
        .step("publish", f"{B}:publish", after=["review", "emit"], trigger=trigger)
        .build()
    )


def wait_for_state(client: Client, run_id: str, step: str, state: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while client.run(run_id).status()["steps"][step]["state"] != state:
        assert time.monotonic() < deadline, f"{step} never became {state}"
        time.sleep(0.05)


def test_waiting_runs_hold_no_worker_and_resume_on_signal(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    waiting = [client.submit(approval_flow(wf_name), {"value": v}) for v in range(6)]
    for run in waiting:
        wait_for_state(client, run.id, "review", "WAITING")
    # More waiting runs than worker processes (4), and the pool still serves others.
    busy = Flow(wf_name + "-busy", 1).step("a", f"{B}:emit").step("b", f"{B}:add_one", after=["a"])
    others = [client.submit(busy.build(), {}) for _ in range(8)]
    assert all(r.wait(60)["state"] == "SUCCEEDED" for r in others)
    assert all(r.state() == "RUNNING" for r in waiting)

    completed = client.signal(waiting[0].id, "approval", {"approved": True, "by": "ana"})
    assert completed == ["review"]
    doc = waiting[0].wait(60)
    assert doc["state"] == "SUCCEEDED"
    assert doc["result"] == "published 0 approved=True by ana"
    assert doc["steps"]["review"]["output"] == {"approved": True, "by": "ana"}
    review_events = [e for e in waiting[0].events() if e.get("step") == "review"]
    assert [(e["from"], e["to"]) for e in review_events] == [
        ("PENDING", "WAITING"),
        ("WAITING", "SUCCEEDED"),
    ]
    for run in waiting[1:]:
        client.signal(run.id, "approval", {"approved": False, "by": "bo"})
        assert run.wait(60)["state"] == "SUCCEEDED"


def test_signal_data_is_checked_against_the_downstream_contract(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    run = client.submit(approval_flow(wf_name), {"value": 3})
    wait_for_state(client, run.id, "review", "WAITING")
    with pytest.raises(SpecError, match=r"handoff review → publish: .*approved"):
        client.signal(run.id, "approval", {"approved": "maybe", "by": "x"})
    assert run.status()["steps"]["review"]["state"] == "WAITING", "refused data changes nothing"
    client.signal(run.id, "approval", {"approved": True, "by": "x"})
    assert run.wait(60)["state"] == "SUCCEEDED"


def test_timeouts_fail_or_skip(client: Client, workers: WorkerPool, wf_name: str) -> None:
    failed = client.submit(approval_flow(wf_name, timeout="1s"), {"value": 1})
    skipped = client.submit(
        approval_flow(wf_name + "-skip", timeout="1s", on_timeout="skip"), {"value": 2}
    )
    doc = failed.wait(30)
    assert doc["state"] == "FAILED"
    assert doc["steps"]["review"]["state"] == "FAILED"
    assert doc["error"] == "step review failed: SignalTimeoutError: no signal approval within 1s"
    doc = skipped.wait(30)
    assert doc["state"] == "SUCCEEDED"
    assert doc["steps"]["review"]["state"] == "SKIPPED"
    assert doc["result"] == "published 2 without review"


def test_signals_to_the_wrong_place_get_clear_errors(
    client: Client, workers: WorkerPool, wf_name: str
) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        client.signal("0000000000000000", "approval", {})
    slow = (
        Flow(wf_name, 1)
        .step("emit", f"{B}:sleepy")
        .step("review", wait_for="approval", after=["emit"])
        .build()
    )
    run = client.submit(slow, {"delay": 2})
    with pytest.raises(NotFoundError, match=r"no step of .* waits for signal 'nope'"):
        client.signal(run.id, "nope", {})
    with pytest.raises(
        OrchestratorError, match=r"no step waits for signal 'approval' now \(review is PENDING\)"
    ):
        client.signal(run.id, "approval", {})
    wait_for_state(client, run.id, "review", "WAITING")
    client.signal(run.id, "approval", {"ok": 1})
    assert run.wait(30)["state"] == "SUCCEEDED"
    with pytest.raises(OrchestratorError, match="is SUCCEEDED"):
        client.signal(run.id, "approval", {})


def test_orch_signal_command(client: Client, workers: WorkerPool, wf_name: str) -> None:
    run = client.submit(approval_flow(wf_name), {"value": 5})
    wait_for_state(client, run.id, "review", "WAITING")
    base = [sys.executable, "-m", "orchestrator", "signal", run.id, "approval"]
    bad = subprocess.run([*base, "--data", "{nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--data: invalid JSON" in bad.stderr
    ok = subprocess.run(
        [*base, "--data", '{"approved": true, "by": "cli"}', "--json"],
        capture_output=True, text=True, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"id": run.id, "signal": "approval", "completed": ["review"]}
    assert run.wait(30)["result"] == "published 5 approved=True by cli"
