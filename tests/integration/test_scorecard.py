"""The scorecard over runs with known outcomes: every figure, exactly, from real workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator import Client, Flow
from orchestrator.scorecard.model import Figures
from tests.integration.helpers import WAIT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("workers")]

B = "tests.steps.basic"


def current(client: Client, ref: str) -> Figures:
    card = client.metrics(ref, window="1h")
    (version,) = card.versions
    return version.current


def test_success_rate_and_retry_burden(client: Client, wf_name: str) -> None:
    retry = {"max_attempts": 3, "initial": "10ms", "max": "20ms", "jitter": "none"}
    wf = Flow(wf_name, 1).step("f", f"{B}:flaky", retry=retry).build()
    for fail_times, end in ((0, "SUCCEEDED"), (0, "SUCCEEDED"), (1, "SUCCEEDED"), (5, "FAILED")):
        assert client.submit(wf, {"fail_times": fail_times}).wait(WAIT)["state"] == end
    f = current(client, f"{wf_name}:1")
    assert (f.runs, f.ended) == (4, {"FAILED": 1, "SUCCEEDED": 3})
    assert f.success_rate == 0.75
    assert (f.first_attempts, f.retries, f.retry_burden) == (4, 3, 0.75)
    assert 0 < f.failed_seconds < WAIT
    ((queue,),) = [[q.queue for q in f.queue_delay]]
    assert queue == "orch" and f.queue_delay[0].attempts == 7
    delays = f.queue_delay[0]
    assert delays.p50 is not None and delays.p50 <= (delays.p95 or 0) <= (delays.p99 or 0)
    assert (f.handoffs, f.handoff_accuracy) == ([], None)
    assert (f.edges, f.edges_taken, f.coverage) == (0, 0, None)
    assert (f.compensated, f.compensation_rate, f.compensations_failed) == (0, 0.0, 0)


def test_compensation_rate_and_a_branch_never_taken(client: Client, wf_name: str) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("emit", f"{B}:emit")
        .step("big", f"{B}:add_one", after=["emit"], when=f"{B}:is_big")
        .step(
            "store", "tests.steps.saga:effect", after=["emit"], compensate="tests.steps.saga:undo"
        )
        .step("f", f"{B}:flaky", after=["store"], retry={"max_attempts": 1})
        .build()
    )
    ok = client.submit(wf, {"value": 1, "fail_times": 0})
    undone = client.submit(wf, {"value": 1, "fail_times": 1})
    assert ok.wait(WAIT)["state"] == "SUCCEEDED"
    assert undone.wait(WAIT)["state"] == "COMPENSATED"
    f = current(client, f"{wf_name}:1")
    assert (f.runs, f.ended, f.success_rate) == (2, {"COMPENSATED": 1, "SUCCEEDED": 1}, 0.5)
    assert (f.compensated, f.compensation_rate, f.compensations_failed) == (1, 0.5, 0)
    assert (f.first_attempts, f.retries, f.retry_burden) == (6, 0, 0.0)
    assert [(h.edge, h.valid, h.total) for h in f.handoffs] == [
        ("emit → store", 2, 2),
        ("store → f", 2, 2),
    ]
    assert f.handoff_accuracy == 1.0
    assert (f.edges, f.edges_taken, f.coverage) == (3, 2, 0.666667), "emit → big was never taken"


def test_handoff_accuracy_counts_a_bad_handoff(client: Client, wf_name: str) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("fetch", f"{B}:fetch")
        .step("wants_int", f"{B}:wants_int", after=["fetch"])
        .build()
    )
    run = client.submit(wf, {"url": "https://example.org/a"})
    assert run.wait(WAIT)["state"] == "FAILED"
    f = current(client, f"{wf_name}:1")
    by_edge = {h.edge: (h.valid, h.total, h.accuracy) for h in f.handoffs}
    assert by_edge["fetch → wants_int"] == (0, 1, 0.0)
    assert (f.runs, f.ended, f.success_rate) == (1, {"FAILED": 1}, 0.0)


def test_orch_metrics_json_is_the_documented_document(client: Client, wf_name: str) -> None:
    wf = Flow(wf_name, 1).step("a", f"{B}:emit").build()
    assert client.submit(wf, {}).wait(WAIT)["state"] == "SUCCEEDED"
    env = {**os.environ}
    cmd = [sys.executable, "-m", "orchestrator", "metrics", f"{wf_name}:1", "--json"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(out.stdout)
    assert set(doc) == {"window", "by", "start", "end", "versions"}
    assert (doc["window"], doc["by"]) == ("1h", "minute")
    (version,) = doc["versions"]
    assert set(version) == {"workflow", "version", "current", "previous", "trend"}
    assert version["current"]["runs"] == 1 and version["current"]["success_rate"] == 1.0
    assert version["previous"]["runs"] == 0
    assert len(version["trend"]) == 60
    assert sum(p["runs"] for p in version["trend"]) == 1
    wide = {**env, "COLUMNS": "200"}
    table = subprocess.run(
        cmd[:-1], env=wide, capture_output=True, text=True, timeout=60, check=True
    )
    assert f"{wf_name} v1" in table.stdout


def test_a_workflow_with_no_runs_says_so(client: Client, wf_name: str) -> None:
    client.register(Flow(wf_name, 1).step("a", f"{B}:emit").build())
    cmd = [sys.executable, "-m", "orchestrator", "metrics", wf_name]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    assert f"workflow {wf_name!r} has no runs in the last 1h" in out.stdout
    bad = subprocess.run(
        [*cmd, "--window", "forever"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("--window: expected a duration such as 1h, 24h, 7d or 30d")
