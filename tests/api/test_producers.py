"""Producers in other languages: the Node.js producer and the curl walk-through in
examples/http, run against the live API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from orchestrator import Client
from orchestrator.api.serve import ServerThread
from orchestrator.loader import load_family
from tests.api import specs

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "http"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None, reason="node is not on PATH: the Node.js producer cannot run here"
)


def run_node(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, str(EXAMPLES / "producer.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ORCH_API_URL": server.url},
    )


@needs_node
def test_node_producer_submits_and_waits(
    api_server: ServerThread, tmp_path: Path, wf_name: str
) -> None:
    spec = tmp_path / "branches.json"
    spec.write_text(json.dumps(specs.branches(wf_name)))
    done = run_node(api_server, str(spec), '{"value": 50}', "node-key-1")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["state"] == "SUCCEEDED" and doc["steps"]["big"]["state"] == "SUCCEEDED"
    again = run_node(api_server, f"{wf_name}:1", '{"value": 50}', "node-key-1")
    assert json.loads(again.stdout)["id"] == doc["id"], "the same key gives the same run"


@needs_node
def test_node_producer_reports_refusals_and_failures_like_the_cli(
    api_server: ServerThread, tmp_path: Path, wf_name: str
) -> None:
    refused = tmp_path / "refused.json"
    refused.write_text(
        json.dumps({"name": wf_name, "version": 1, "steps": {"s": {"task": "os:system"}}})
    )
    out = run_node(api_server, str(refused))
    assert out.returncode == 2
    assert out.stderr.startswith("producer: error: step 's', field 'task': 'os:system'")
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps(specs.failing(wf_name + "-f")))
    out = run_node(api_server, str(failing))
    assert out.returncode == 1 and json.loads(out.stdout)["state"] == "FAILED"
    gone = subprocess.run(
        [str(NODE), str(EXAMPLES / "producer.mjs"), wf_name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "ORCH_API_URL": "http://127.0.0.1:9"},
    )
    assert gone.returncode == 3 and "cannot reach" in gone.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not on PATH")
def test_curl_walkthrough_runs_end_to_end(api_server: ServerThread, client: Client) -> None:
    demo = resources.files("orchestrator.examples") / "document-triage.yaml"
    for wf in load_family(str(demo)).values():  # the child workflow first, then the demo's
        client.register(wf)
    out = subprocess.run(
        ["bash", str(EXAMPLES / "walkthrough.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ORCH_API_URL": api_server.url},
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "application/problem+json" in out.stdout
    assert "run 'no-such-run' not found" in out.stdout
    assert '"never_taken"' in out.stdout
