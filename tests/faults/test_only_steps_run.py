"""A spec may name only steps: ``os:system`` and friends are refused, and never run.

Refused with one line at ``orch validate --import``, at submit (the client
imports what it can), at ``orch worker`` start, and by the worker itself when
a spec reaches it anyway (written by a client that could not import the code,
or by anyone with access to Redis): the step fails at once, never retried,
and no command runs. Each test watches a marker file that a command would
create. ``ORCH_TASK_MODULES`` keeps a worker from even importing a module
outside it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Flow, Workflow
from orchestrator.compiler import compile_plan
from orchestrator.errors import TaskRefusedError
from orchestrator.messages import priority_lists
from orchestrator.store.outcomes import Submitted
from tests.cli.test_cli import assert_one_line_error, orch, write_spec
from tests.integration.helpers import Cluster, private_cluster

pytestmark = [pytest.mark.integration]

NOT_A_STEP = "is not a step"
FAST_RETRY = {"max_attempts": 3, "initial": 0.1}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    queue = f"steps-{uuid.uuid4().hex[:8]}"
    with private_cluster(tmp_path, queue=queue, processes=1, concurrency=2, lease=5) as c:
        yield c


def flow() -> Flow:
    return Flow(f"only-{uuid.uuid4().hex[:8]}", 1)


def smuggle(c: Cluster, wf: Workflow, run_input: dict[str, Any]) -> str:
    """Register and submit through the store, as a client that checked nothing would."""
    plan = compile_plan(wf, default_queue=c.queue)
    c.client.store.engine.register(wf, plan)
    submitted = c.client.store.engine.submit(plan, json.dumps(run_input), key=None)
    assert isinstance(submitted, Submitted)
    run_id = submitted.run_id
    return run_id


def test_validate_and_submit_refuse_a_shell_command_task(cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = {"cmd": f"touch {marker}; id -un"}
    wf = flow().step("sh", "subprocess:getoutput", queue=cluster.queue).build()
    with pytest.raises(TaskRefusedError, match=NOT_A_STEP) as info:
        cluster.client.submit(wf, command)
    assert str(info.value).startswith("step 'sh', field 'task'"), info.value

    spec = write_spec(tmp_path, "shell", '  sh: {task: "os:system"}\n')
    env = {**os.environ, "ORCH_REDIS_URL": cluster.server.url}
    where = ("step 'sh', field 'task'", "'os:system'", NOT_A_STEP)
    assert_one_line_error(orch("validate", str(spec), "--import", env=env), 2, *where)
    submit = orch(
        "submit", str(spec), "--input", json.dumps({"command": f"touch {marker}"}), env=env
    )
    assert_one_line_error(submit, 2, *where)
    assert cluster.r.zcard("orch:runs") == 0, "a refused run was created"
    assert sum(cluster.r.llen(q) for q in priority_lists(cluster.queue)) == 0
    assert not marker.exists(), "the command ran"


def test_orch_worker_refuses_to_start_on_a_registered_non_step(cluster: Cluster) -> None:
    wf = flow().step("sh", "os:system", queue=cluster.queue).build()
    cluster.client.store.engine.register(wf, compile_plan(wf, default_queue=cluster.queue))
    env = {**os.environ, "ORCH_REDIS_URL": cluster.server.url}
    proc = orch("worker", "-Q", cluster.queue, "-c", "1", env=env)
    assert_one_line_error(proc, 2, f"workflow {wf.ref}", "'os:system'", NOT_A_STEP)


def test_the_worker_refuses_non_steps_it_is_sent(cluster: Cluster, tmp_path: Path) -> None:
    """task, compensate, when and fallback each name a command runner; none runs."""
    markers = {k: tmp_path / k for k in ("task", "compensate", "when", "fallback")}
    q = cluster.queue
    cases = {
        "task": (
            flow().step("sh", "subprocess:getoutput", queue=q, retry=FAST_RETRY),
            {"cmd": f"touch {markers['task']}; id -un"},
        ),
        "compensate": (
            flow()
            .step("a", "tests.steps.basic:emit", queue=q, compensate="os:system")
            .step("b", "tests.steps.basic:boom", after=["a"], queue=q),
            {"command": f"touch {markers['compensate']}"},
        ),
        "when": (
            flow()
            .step("a", "tests.steps.basic:emit", queue=q)
            .step("x", "tests.steps.basic:add_one", after=["a"], queue=q, when="os:system"),
            {"command": f"touch {markers['when']}"},
        ),
        "fallback": (
            flow().step("b", "tests.steps.basic:boom", queue=q, fallback="os:system"),
            {"command": f"touch {markers['fallback']}"},
        ),
    }
    runs = {kind: smuggle(cluster, f.build(), data) for kind, (f, data) in cases.items()}
    docs = {kind: cluster.client.run(run_id).wait(60) for kind, run_id in runs.items()}

    task = docs["task"]
    assert task["state"] == "FAILED", task
    assert task["steps"]["sh"]["attempts"] == 1, "a refusal must not be retried"
    assert NOT_A_STEP in task["steps"]["sh"]["error"], task["steps"]["sh"]
    assert "TaskRefusedError" in task["steps"]["sh"]["error"]
    assert task["result"] is None

    assert docs["compensate"]["state"] == "COMPENSATION_FAILED", docs["compensate"]
    assert NOT_A_STEP in json.dumps(docs["compensate"]), docs["compensate"]
    assert docs["when"]["state"] == "FAILED", docs["when"]
    assert NOT_A_STEP in (docs["when"]["steps"]["x"]["error"] or ""), docs["when"]["steps"]["x"]
    assert docs["fallback"]["state"] == "FAILED", docs["fallback"]
    assert NOT_A_STEP in (docs["fallback"]["steps"]["b"]["error"] or ""), docs["fallback"]

    ran = [kind for kind, marker in markers.items() if marker.exists()]
    assert ran == [], f"commands ran on the worker: {ran}"


def test_orch_task_modules_keeps_a_worker_from_importing_a_module(tmp_path: Path) -> None:
    queue = f"allow-{uuid.uuid4().hex[:8]}"
    trap = tmp_path / "imported"
    allow = {"ORCH_TASK_MODULES": "tests.steps.basic", "ORCH_TEST_IMPORT_TRAP": str(trap)}
    with private_cluster(
        tmp_path, queue=queue, processes=1, concurrency=1, lease=5, env=allow
    ) as c:
        ok = c.client.submit(flow().step("a", "tests.steps.basic:emit", queue=queue).build(), {})
        trapped = flow().step("t", "tests.steps.import_trap:caught", queue=queue).build()
        run = c.client.submit(trapped, {})  # this client allows any module: the worker decides
        assert ok.wait(60)["state"] == "SUCCEEDED"
        doc = run.wait(60)
        assert doc["state"] == "FAILED", doc
        error = doc["steps"]["t"]["error"] or ""
        assert "outside ORCH_TASK_MODULES (tests.steps.basic)" in error, error
        assert doc["steps"]["t"]["attempts"] == 1
        assert not trap.exists(), f"the worker imported the module: {trap.read_text()}"

        spec = write_spec(tmp_path, "trap", '  t: {task: "tests.steps.import_trap:caught"}\n')
        env = {**os.environ, "ORCH_REDIS_URL": c.server.url, **allow}
        submit = orch("submit", str(spec), env=env)
        assert_one_line_error(submit, 2, "step 't', field 'task'", "outside ORCH_TASK_MODULES")
        assert not trap.exists(), "orch submit imported the module"
