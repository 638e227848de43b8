"""The worker start-up import check: its scope, and a failure mode for containers.

A compose worker used to crash-loop when Redis held a workflow whose tasks
were not in its image: the check exited 2 and ``restart: unless-stopped``
started it again. ``ORCH_IMPORT_CHECK=warn`` starts it anyway, saying which
version it cannot run; ``strict`` (the default) still refuses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestrator import Client, Flow
from tests.cli.procs import background, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def worker_argv(queue: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "worker", "-Q", queue, "-c", "1"]


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


def run_worker(queue: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A worker start expected to fail: its exit status and output."""
    return subprocess.run(
        worker_argv(queue),
        env=env_with(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def register_unimportable(client: Client, name: str, queue: str) -> str:
    wf = Flow(name, 1).step("a", "no_such_module_anywhere:f", queue=queue).build()
    client.register(wf)
    return wf.ref


def test_strict_refuses_to_start_naming_the_workflow(client: Client, wf_name: str) -> None:
    queue = f"img-{uuid.uuid4().hex[:8]}"
    ref = register_unimportable(client, wf_name, queue)
    proc = run_worker(queue)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("orch: error: ") and "Traceback" not in proc.stderr
    assert f"workflow {ref}" in line and "no_such_module_anywhere" in line
    assert "ORCH_IMPORT_CHECK=warn" in line


def test_the_check_covers_only_the_queues_the_worker_consumes(
    tmp_path: Path, client: Client, wf_name: str
) -> None:
    broken_queue, own_queue = (f"img-{uuid.uuid4().hex[:8]}" for _ in range(2))
    register_unimportable(client, wf_name, broken_queue)
    good = Flow(wf_name + "-ok", 1).step("a", "tests.steps.basic:noop", queue=own_queue).build()
    run = client.submit(good, {})
    log = tmp_path / "worker.log"
    with background(worker_argv(own_queue), env=env_with(), cwd=ROOT, log=log) as worker:
        assert run.wait(60)["state"] == "SUCCEEDED", log.read_text()
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: worker.poll() is not None, 60, "the worker stops")


def test_warn_starts_anyway_and_serves_what_it_can(
    tmp_path: Path, client: Client, wf_name: str
) -> None:
    queue = f"img-{uuid.uuid4().hex[:8]}"
    ref = register_unimportable(client, wf_name, queue)
    good = Flow(wf_name + "-ok", 1).step("a", "tests.steps.basic:noop", queue=queue).build()
    run = client.submit(good, {})
    log = tmp_path / "worker.log"
    env = env_with(ORCH_IMPORT_CHECK="warn")
    with background(worker_argv(queue), env=env, cwd=ROOT, log=log) as worker:
        assert run.wait(60)["state"] == "SUCCEEDED", log.read_text()
        assert worker.poll() is None, "the worker keeps running"
        warned = [ln for ln in log.read_text().splitlines() if "cannot run on this" in ln]
        assert len(warned) == 1, log.read_text()
        assert warned[0].startswith(f"orch: warning: workflow {ref} cannot run on this worker")
        assert "no_such_module_anywhere" in warned[0]
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: worker.poll() is not None, 60, "the worker stops")


def test_a_bad_import_check_setting_is_one_line() -> None:
    proc = run_worker("orch", ORCH_IMPORT_CHECK="sometimes")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "orch: error: ORCH_IMPORT_CHECK='sometimes': Input should be 'strict', 'warn' or 'off'"
    )
