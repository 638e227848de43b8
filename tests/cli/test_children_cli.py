"""`orch validate`, `orch submit` and `orch status` with child workflows, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.embedded import EmbeddedRedis
from tests.cli.test_cli import assert_one_line_error, orch
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

LEAF = "name: {leaf}\nversion: 1\nsteps:\n  a: {{task: tests.steps.basic:emit}}\n"
TOP = "name: {top}\nversion: 1\nsteps:\n  kid: {{workflow: {leaf}}}\n"


def test_validate_refuses_a_cycle_through_child_workflows(tmp_path: Path, wf_name: str) -> None:
    a, b = f"{wf_name}-a", f"{wf_name}-b"
    (tmp_path / f"{a}.yaml").write_text(f"name: {a}\nversion: 1\nsteps:\n  s: {{workflow: {b}}}\n")
    (tmp_path / f"{b}.yaml").write_text(f"name: {b}\nversion: 1\nsteps:\n  t: {{workflow: {a}}}\n")
    proc = orch("validate", str(tmp_path / f"{a}.yaml"))
    assert_one_line_error(proc, 2, f"cycle through child workflows {a} → {b} → {a}", "max_depth")
    bounded = f"name: {b}\nversion: 1\nsteps:\n  t: {{workflow: {a}, max_depth: 3}}\n"
    (tmp_path / f"{b}.yaml").write_text(bounded)
    assert orch("validate", str(tmp_path / f"{a}.yaml")).returncode == 0


def test_submit_registers_the_child_beside_it_and_status_shows_the_tree(
    tmp_path: Path, wf_name: str, workers: WorkerPool
) -> None:
    leaf, top = f"{wf_name}-leaf", f"{wf_name}-top"
    (tmp_path / f"{leaf}.yaml").write_text(LEAF.format(leaf=leaf))
    spec = tmp_path / f"{top}.yaml"
    spec.write_text(TOP.format(top=top, leaf=leaf))
    proc = orch("submit", str(spec), "--input", '{"value": 5}', "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["state"] == "SUCCEEDED"
    assert doc["result"] == 5  # the child's result is the step's output
    child = doc["steps"]["kid"]["child"]
    tree = json.loads(orch("status", doc["id"], "--tree", "--json").stdout)
    (nested,) = tree["steps"]["kid"]["runs"]
    assert (nested["id"], nested["workflow"], nested["state"]) == (child, leaf, "SUCCEEDED")
    shown = orch("status", doc["id"]).stdout
    assert f"kid → run {child}" in shown
    assert f"{leaf} v1" in shown
    below = " ".join(orch("status", child).stdout.split())  # wrapped to the terminal
    assert f"child of run {doc['id']}, step kid" in below


def test_submit_refuses_a_child_that_is_not_registered(
    tmp_path: Path, wf_name: str, redis_server: EmbeddedRedis
) -> None:
    spec = tmp_path / f"{wf_name}.yaml"
    spec.write_text(f"name: {wf_name}\nversion: 1\nsteps:\n  s: {{workflow: {wf_name}-none:2}}\n")
    proc = orch("submit", str(spec))
    assert_one_line_error(
        proc, 2, f"version 2 of '{wf_name}-none' is not registered", "step 's', field 'workflow'"
    )
