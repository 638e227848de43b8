"""Flower tells the truth: a failed step shows as failed, and lane-run steps show at all.

Real workers sending task events (``-E``), and a real Flower (``orch flower``)
reading them; the test asks Flower's API what it shows.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis, free_port
from tests.cli.procs import ORCH_SCRIPT, background, port_open, user_env, wait_until
from tests.integration.helpers import WAIT
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

QUEUE = "evented"
AUTH = ("ana", "s3cret")


@pytest.fixture(scope="module")
def evented_pool(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    pool = WorkerPool(redis_server.url, log_dir=tmp_path_factory.mktemp("evented-logs"))
    pool.start([QUEUE], concurrency=2, processes=1, events=True)
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def flower(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    folder = tmp_path_factory.mktemp("flower")
    argv = [ORCH_SCRIPT, "flower", "--port", str(port), "--basic-auth", ":".join(AUTH)]
    env = user_env(ORCH_REDIS_URL=redis_server.url)
    with background(argv, env=env, cwd=folder, log=folder / "flower.log") as proc:

        def listening() -> bool:
            assert proc.poll() is None, (folder / "flower.log").read_text()
            return port_open(port)

        wait_until(listening, 60, "Flower listens")
        yield port
        proc.terminate()
        proc.wait(30)


def flower_tasks(port: int) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/tasks")
    token = base64.b64encode(":".join(AUTH).encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def shown(port: int, task_id: str, state: str) -> bool:
    return flower_tasks(port).get(task_id, {}).get("state") == state


def watching(port: int, client: Client, wf_name: str) -> None:
    """Wait until Flower sees a task whole: it may open its port before it hears events."""
    wf = Flow(f"{wf_name}-warm", 1).step("a", "tests.steps.basic:emit", queue=QUEUE).build()

    def seen_whole() -> bool:
        run = client.submit(wf, {})
        assert run.wait(WAIT)["state"] == "SUCCEEDED"
        task = flower_tasks(port).get(f"{run.id}-a", {})
        return task.get("name") == f"{wf_name}-warm.a"

    wait_until(seen_whole, 60, "Flower hears the workers' events")


def test_a_failed_step_shows_as_failed(
    evented_pool: WorkerPool, flower: int, client: Client, wf_name: str
) -> None:
    watching(flower, client, wf_name)
    wf = Flow(wf_name, 1).step("x", "tests.steps.basic:boom", queue=QUEUE).build()
    run = client.submit(wf, {})
    assert run.wait(WAIT)["state"] == "FAILED"
    wait_until(lambda: shown(flower, f"{run.id}-x", "FAILURE"), 30, "Flower shows the failure")
    task = flower_tasks(flower)[f"{run.id}-x"]
    assert task["name"] == f"{wf_name}.x"
    assert "boom" in (task.get("exception") or "")


def test_steps_a_lane_ran_show_too(
    evented_pool: WorkerPool, flower: int, client: Client, wf_name: str
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("a", "tests.steps.basic:emit", queue=QUEUE)
        .step("b", "tests.steps.basic:add_one", after=["a"], queue=QUEUE)
        .step("c", "tests.steps.basic:add_one", after=["b"], queue=QUEUE)
        .build()
    )
    watching(flower, client, wf_name)
    run = client.submit(wf, {})
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    for step in ("a", "b", "c"):
        wait_until(lambda s=step: shown(flower, f"{run.id}-{s}", "SUCCESS"), 30, f"{step} shown")
    tasks = flower_tasks(flower)
    assert [tasks[f"{run.id}-{s}"]["name"] for s in "abc"] == [f"{wf_name}.{s}" for s in "abc"]
    logs = "\n".join(Path(w.log_path).read_text() for w in evented_pool.workers)
    assert "Traceback" not in logs
