"""Exit codes and flags as documented: 0 ok, 1 failed, 2 bad usage, 3 Redis unreachable.

Each case was broken once: a Flower that crashed exited 0, ``--state NOPE``
listed nothing with exit 0, a malformed ``ORCH_REDIS_URL`` was an "internal
error", ``graph`` and ``schema`` refused ``--json``, Rich markup ate the
``[flower]`` of the install hint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.embedded import EmbeddedRedis
from orchestrator.states import RunState

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "orchestrator" / "examples" / "document-triage.yaml"


def orch(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("orch: ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("orch: error: ")
    return lines[0]


def test_runs_refuses_an_unknown_state_naming_the_allowed_ones() -> None:
    line = error_line(orch("runs", "--state", "NOPE"), 2)
    assert "'NOPE' is not a run state" in line
    for state in RunState:
        assert state.value in line
    assert "Traceback" not in line


def test_runs_accepts_a_state_in_any_case(redis_server: EmbeddedRedis) -> None:
    proc = orch("runs", "--state", "succeeded", "--json")
    assert proc.returncode == 0, proc.stderr
    assert all(d["state"] == "SUCCEEDED" for d in json.loads(proc.stdout))


@pytest.mark.parametrize("url", ["not-a-url", "http://localhost:6379", "redis://host:port/0"])
def test_a_malformed_redis_url_is_bad_usage_in_one_line(url: str) -> None:
    for command in (["status", "abc"], ["runs"], ["flower"]):
        line = error_line(orch(*command, ORCH_REDIS_URL=url), 2)
        assert "ORCH_REDIS_URL" in line and "is not a Redis URL" in line
        assert "internal error" not in line


def test_graph_and_schema_take_json() -> None:
    graph = orch("graph", str(EXAMPLE), "--json")
    assert graph.returncode == 0, graph.stderr
    doc = json.loads(graph.stdout)
    assert doc["workflow"] == "document-triage"
    assert {"from": "chunk", "to": "embed", "map": True} in doc["edges"]
    assert set(doc["nodes"]) >= {"fetch", "store", "publish"}
    schema = orch("schema", "--json")
    assert schema.returncode == 0, schema.stderr
    assert "StepSpec" in json.loads(schema.stdout)["$defs"]


def test_flower_exits_3_when_redis_is_unreachable() -> None:
    line = error_line(orch("flower", ORCH_REDIS_URL="redis://127.0.0.1:1/0"), 3)
    assert "unreachable" in line


def test_flower_refuses_a_port_in_use(redis_server: EmbeddedRedis) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = error_line(orch("flower", "--port", str(port)), 2)
    assert f"port {port} is in use" in line


def test_a_flower_that_crashes_is_a_failed_command(redis_server: EmbeddedRedis) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Flower itself dies on start (a bad option in its environment), after orch's checks.
    proc = orch("flower", "--port", str(port), FLOWER_MAX_TASKS="not-a-number")
    line = error_line(proc, 1)
    assert "Flower exited with code 1" in line


def test_the_flower_install_hint_keeps_its_extra(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    shadow = tmp_path / "flower"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('flower is not installed here')\n")
    line = error_line(orch("flower", PYTHONPATH=str(tmp_path)), 2)
    assert "pip install 'celery-orchestrator[flower]'" in line
