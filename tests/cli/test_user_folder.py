"""A user's own folder, holding only their step module and spec, works as the README says.

The commands run as the ``orch`` console script (not ``python -m``, which
would put the folder on sys.path by itself), from the folder, with no
PYTHONPATH: the user's module is found as ``celery -A`` finds it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from orchestrator import Client
from orchestrator.contracts import ContractStore
from orchestrator.embedded import EmbeddedRedis
from orchestrator.loader import workflow_from_data
from tests.cli.procs import ORCH_SCRIPT, background, ready_dev, user_env, wait_until

pytestmark = pytest.mark.integration

STEPS = """\
from pydantic import BaseModel
from orchestrator import StepContext, step


class Document(BaseModel):
    url: str
    text: str


@step
def fetch(url: str, ctx: StepContext) -> Document:
    return Document(url=url, text=f"text of {url} (attempt {ctx.attempt})")


@step
def count(fetch: Document) -> int:
    return len(fetch.text.split())
"""


def spec(name: str, queue: str | None = None) -> str:
    routed = f", queue: {queue}" if queue else ""
    return (
        f"name: {name}\nversion: 1\ninput: {{url: str}}\nsteps:\n"
        f'  fetch: {{task: "mysteps:fetch"{routed}}}\n'
        f'  count: {{task: "mysteps:count", after: [fetch]{routed}}}\n'
    )


def user_folder(tmp_path: Path, name: str, queue: str | None = None) -> Path:
    folder = tmp_path / "my-project"
    folder.mkdir()
    (folder / "mysteps.py").write_text(STEPS)
    (folder / "flow.yaml").write_text(spec(name, queue))
    return folder


def orch(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORCH_SCRIPT, *args],
        cwd=folder,
        env=user_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_quickstart_runs_from_a_folder_of_the_users_own(tmp_path: Path, wf_name: str) -> None:
    folder = user_folder(tmp_path, wf_name)
    checked = orch(folder, "validate", "flow.yaml", "--import")
    assert checked.returncode == 0, checked.stderr
    assert "valid (tasks imported)" in checked.stdout
    log = tmp_path / "dev.log"
    with background([ORCH_SCRIPT, "dev", "-c", "1"], env=user_env(), cwd=folder, log=log) as dev:
        ready_dev(dev, folder / ".orch", log)
        url = '{"url": "https://example.com/a"}'
        proc = orch(folder, "submit", "flow.yaml", "--input", url, "--wait", "--json")
        assert proc.returncode == 0, (proc.stderr, log.read_text())
        doc = json.loads(proc.stdout)
        assert doc["state"] == "SUCCEEDED", doc
        assert doc["result"] == 5  # "text of https://example.com/a (attempt 1)"
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(60) == 0


def test_orch_worker_imports_the_users_module_and_stores_its_contracts(
    tmp_path: Path, wf_name: str, redis_server: EmbeddedRedis, client: Client
) -> None:
    queue = f"mine-{uuid.uuid4().hex[:8]}"
    folder = user_folder(tmp_path, wf_name, queue)
    wf = workflow_from_data(yaml.safe_load(spec(wf_name, queue)))
    run = client.submit(wf, {"url": "https://example.com/b"})  # registered; nobody serves it yet
    log = tmp_path / "worker.log"
    env = user_env(ORCH_REDIS_URL=redis_server.url)
    argv = [ORCH_SCRIPT, "worker", "-Q", queue, "-c", "1"]
    with background(argv, env=env, cwd=folder, log=log) as worker:
        assert run.wait(60)["state"] == "SUCCEEDED", log.read_text()
        assert run.result() == 5
        stored = ContractStore(client.redis, client.keys).load(wf)
        assert set(stored) == {"fetch", "count"}, "the import check stored both contracts"
        assert stored["fetch"]["params"]["url"] == {
            "schema": {"type": "string"},
            "required": True,
            "none_ok": False,
        }
        worker.send_signal(signal.SIGTERM)
        wait_until(lambda: worker.poll() is not None, 60, "the worker stops")
