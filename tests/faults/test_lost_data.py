"""Redis restarted without persistence: the loss is detected and called "lost".

The server here runs with no AOF and no snapshots, so a kill -9 and a restart
give back an empty Redis. What must follow: each worker says once, loudly,
that the data of the old epoch is gone; a long-lived ``Client`` says so too,
registers its workflow again and submits; ``orch status`` of a run of the
old epoch says it was lost with the Redis data (and does not blame the TTL),
and ``orch runs`` reports the lost epoch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Flow
from orchestrator.epoch import DataLostWarning, epoch_of
from orchestrator.errors import RunLostError
from tests.faults.test_faults import FaultEnv, fault_env
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultEnv]:
    with fault_env(
        tmp_path,
        monkeypatch,
        "amnesia",
        processes=2,
        concurrency=1,
        lease=2.0,
        redis_args=("--appendonly", "no", "--save", ""),
    ) as env:
        yield env


def orch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def loss_lines(env: FaultEnv, epoch: str) -> list[str]:
    needle = f"Redis lost its data: epoch {epoch} is gone"
    return [
        line
        for w in env.pool.workers
        for line in w.log_path.read_text(errors="replace").splitlines()
        if needle in line
    ]


def test_lost_data_is_reported_as_lost_and_a_long_lived_client_registers_again(
    env: FaultEnv,
) -> None:
    flow = Flow(f"amnesia-{uuid.uuid4().hex[:8]}", 1)
    flow.step("one", "tests.steps.basic:emit", queue=env.queue)
    wf = flow.build()
    before = env.client.submit(wf, {"value": 1})
    assert env.wait(before, timeout=WAIT)["state"] == "SUCCEEDED"
    old = epoch_of(before.id)
    assert old is not None, f"run id {before.id} names no epoch"

    env.server.kill()
    env.server.start()
    # Workers may already beat into the new server: only the old run must be gone.
    kept = env.r.exists(env.client.store.keys.run(before.id))
    assert kept == 0, "the restarted Redis kept the old run: the test needs it empty"

    # Every worker says it once, loudly.
    wait_until(lambda: len(loss_lines(env, old)) >= len(env.pool.workers), timeout=WAIT)
    time.sleep(2.5)  # more checks pass: still once each
    lines = loss_lines(env, old)
    assert len(lines) == len(env.pool.workers), lines
    assert all("ERROR" in line for line in lines), lines

    # The long-lived client: warned, registers again, and the run goes through.
    with pytest.warns(DataLostWarning, match=f"epoch {old} is gone"):
        after = env.client.submit(wf, {"value": 2})
    doc = env.wait(after, timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == 2
    new = epoch_of(after.id)
    assert new is not None and new != old

    # A run of the lost epoch: "lost", not "not found".
    with pytest.raises(RunLostError, match=f"lost with the Redis data \\(epoch {old}\\)"):
        env.client.run(before.id)
    status = orch("status", before.id)
    assert status.returncode == 2, (status.stdout, status.stderr)
    assert f"was lost with the Redis data (epoch {old})" in status.stderr, status.stderr
    assert "ORCH_RUN_TTL" not in status.stderr
    assert "Traceback" not in status.stderr

    runs = orch("runs")
    assert runs.returncode == 0, runs.stderr
    assert f"Redis lost its data: epoch {old} is gone" in runs.stderr, runs.stderr
    assert after.id[:8] in runs.stdout
