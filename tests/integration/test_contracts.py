"""The input contract is checked at submit, and signal data where the step code is absent.

A declared ``input:`` is checked by its type names. Without one, the step
parameter contracts that ``orch validate --import`` (or a worker's start-up
check) stored in Redis are used, by a client that cannot import the steps;
where no contract is known, the client says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import pytest

from orchestrator import Client, SpecError
from orchestrator.contracts import ContractNotChecked
from orchestrator.embedded import EmbeddedRedis
from orchestrator.loader import load_workflow

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

HIDDEN = """\
from pydantic import BaseModel
from orchestrator import step


class Approval(BaseModel):
    approved: bool
    by: str


@step
def greet(name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)


@step
def publish(greet: str, review: Approval) -> str:
    return f"{greet} (approved by {review.by})"
"""


def orch(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orch: error: "), proc.stderr
    return lines[0]


def test_a_declared_input_is_checked_at_submit(
    tmp_path: Path, wf_name: str, client: Client
) -> None:
    spec = tmp_path / "declared.yaml"
    spec.write_text(
        f"name: {wf_name}\nversion: 1\ninput: {{value: int}}\n"
        "steps:\n  a: {task: tests.steps.basic:emit, queue: nobody-serves-this}\n"
    )
    missing = one_line_error(orch("submit", str(spec), "--input", "{}"), 2)
    assert "field 'value' is missing" in missing
    wrong = one_line_error(orch("submit", str(spec), "--input", '{"value": "abc"}'), 2)
    assert "field 'value'" in wrong and "integer" in wrong
    assert client.runs(workflow=wf_name) == [], "a refused input starts no run"
    ok = orch("submit", str(spec), "--input", '{"value": 3}')
    assert ok.returncode == 0, ok.stderr
    assert [d["id"] for d in client.runs(workflow=wf_name)] == [ok.stdout.strip()]
    with pytest.raises(SpecError, match="field 'value'"):
        client.submit(str(spec), {"value": 2.5})


def hidden_folder(tmp_path: Path, name: str, queue: str) -> tuple[Path, Path]:
    """A step module only ``orch validate`` (run in its folder) can import, and its spec."""
    module = f"hidden_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "steps"
    folder.mkdir()
    (folder / f"{module}.py").write_text(HIDDEN)
    spec = folder / "flow.yaml"
    spec.write_text(
        f"name: {name}\nversion: 1\nsteps:\n"
        f"  greet: {{task: {module}:greet, queue: {queue}}}\n"
        "  review: {wait_for: approval}\n"
        f"  publish: {{task: {module}:publish, after: [greet, review], queue: {queue}}}\n"
    )
    return folder, spec


def waiting(client: Client, run_id: str) -> None:
    deadline = time.monotonic() + 20
    while client.run(run_id).status()["steps"]["review"]["state"] != "WAITING":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_stored_contracts_check_inputs_and_signals_without_the_code(
    tmp_path: Path, wf_name: str, redis_server: EmbeddedRedis
) -> None:
    folder, spec = hidden_folder(tmp_path, wf_name, f"q-{uuid.uuid4().hex[:8]}")
    wf = load_workflow(spec)
    with Client(redis_server.url) as before:
        with pytest.warns(ContractNotChecked, match=r"against step\(s\) greet, publish"):
            early = before.submit(wf, {"name": 42})  # unknown contract: said, not refused
        waiting(before, early.id)
        with pytest.warns(ContractNotChecked, match="signal data for step 'review'"):
            assert before.signal(early.id, "approval", {"approved": "maybe"}) == ["review"]

    stored = orch("validate", str(spec), "--import", cwd=folder)
    assert stored.returncode == 0, stored.stderr
    assert "step contracts stored" in stored.stdout

    with Client(redis_server.url) as client, warnings.catch_warnings():
        warnings.simplefilter("error", ContractNotChecked)  # every contract is known now
        for bad, needle in [
            ({"times": 2}, "field 'name' is missing (step 'greet' needs it"),
            ({"name": 42}, "field 'name': 42 is not of type 'string'"),
            ({"name": "ana", "times": "x"}, "field 'times'"),
        ]:
            with pytest.raises(SpecError, match=needle.replace("(", r"\(")):
                client.submit(wf, bad)
        run = client.submit(wf, {"name": "ana", "times": 2})
        waiting(client, run.id)
        with pytest.raises(SpecError, match=r"handoff review → publish: .*'approved'"):
            client.signal(run.id, "approval", {"approved": "maybe", "by": "x"})
        assert client.run(run.id).status()["steps"]["review"]["state"] == "WAITING"
        assert client.signal(run.id, "approval", {"approved": True, "by": "x"}) == ["review"]

    refused = one_line_error(orch("submit", str(spec), "--input", '{"times": 1}'), 2)
    assert "field 'name' is missing" in refused
    doc = json.loads(orch("validate", str(spec), "--import", "--json", cwd=folder).stdout)
    assert doc["contracts_stored"] is True
