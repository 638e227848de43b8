"""The ``orch`` CLI as a user runs it: real processes, real Redis, real workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.embedded import EmbeddedRedis
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def orch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def write_spec(tmp_path: Path, name: str, steps: str, version: int = 1) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nversion: {version}\nsteps:\n{steps}")
    return path


DIAMOND = """\
  a: {task: "tests.steps.basic:emit"}
  b: {task: "tests.steps.basic:emit", after: [a]}
  c: {task: "tests.steps.basic:add_one", after: [a]}
"""
NON_SP = """\
  a: {task: "tests.steps.basic:emit"}
  b: {task: "tests.steps.basic:emit"}
  c: {task: "tests.steps.basic:add_one", after: [a]}
  d: {task: "tests.steps.basic:add_one", after: [a, b]}
  e: {task: "tests.steps.basic:add_one", after: [b]}
"""


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("orch: error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_validate_accepts_and_refuses_with_one_line(tmp_path: Path, wf_name: str) -> None:
    good = write_spec(tmp_path, wf_name, DIAMOND)
    ok = orch("validate", str(good), "--import")
    assert ok.returncode == 0, ok.stderr
    assert "valid (tasks imported)" in ok.stdout
    cyclic = write_spec(
        tmp_path, wf_name + "-c", '  a: {task: "m:f", after: [b]}\n  b: {task: "m:f", after: [a]}\n'
    )
    assert_one_line_error(orch("validate", str(cyclic)), 2, "cycle", "step ", "'after'")
    unknown = write_spec(tmp_path, wf_name + "-u", '  a: {task: "m:f", after: [nope]}\n')
    assert_one_line_error(orch("validate", str(unknown)), 2, "step 'a'", "'after'", "nope")
    unimportable = write_spec(tmp_path, wf_name + "-i", '  a: {task: "no_such_module:f"}\n')
    assert orch("validate", str(unimportable)).returncode == 0
    assert_one_line_error(
        orch("validate", str(unimportable), "--import"), 2, "step 'a'", "'task'", "no_such_module"
    )
    assert_one_line_error(
        orch("validate", str(tmp_path / "missing.yaml")), 2, "missing.yaml", "cannot read"
    )


def test_plan_shows_exact_joins(tmp_path: Path, wf_name: str) -> None:
    spec = write_spec(tmp_path, wf_name, NON_SP)
    doc = json.loads(orch("plan", str(spec), "--json").stdout)
    assert doc["steps"]["d"]["after"] == ["a", "b"]
    assert doc["steps"]["c"]["after"] == ["a"]
    assert doc["steps"]["e"]["after"] == ["b"]
    assert sorted(doc["roots"]) == ["a", "b"]
    text = orch("plan", str(spec))
    assert text.returncode == 0
    assert "join of a, b" in text.stdout


def test_schema_is_json_schema() -> None:
    proc = orch("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert "steps" in schema["properties"]
    assert "StepSpec" in schema["$defs"]


def test_unreachable_redis_exits_3_fast(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ORCH_REDIS_URL"}
    env["ORCH_DATA_DIR"] = str(tmp_path / "nothing-here")
    started = time.monotonic()
    proc = orch("status", "abc", env=env)
    assert_one_line_error(proc, 3, "orch dev")
    env["ORCH_REDIS_URL"] = "redis://127.0.0.1:1/0"
    assert_one_line_error(orch("runs", env=env), 3, "unreachable")
    assert time.monotonic() - started < 20


def test_submit_wait_status_runs(tmp_path: Path, wf_name: str, workers: WorkerPool) -> None:
    spec = write_spec(tmp_path, wf_name, DIAMOND)
    proc = orch("submit", str(spec), "--input", '{"value": 7}', "--wait", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["state"] == "SUCCEEDED"
    assert doc["result"] == {"b": 7, "c": 1}
    run_id = doc["id"]

    plain = orch("submit", str(spec), "--input", '{"value": 1}')
    assert plain.returncode == 0
    assert re.fullmatch(r"[0-9a-f]{6}-[0-9a-f]{16}", plain.stdout.strip()), plain.stdout

    status = json.loads(orch("status", run_id, "--json").stdout)
    assert status == doc
    assert set(status) == {
        "id",
        "workflow",
        "version",
        "state",
        "input",
        "result",
        "error",
        "created_at",
        "finished_at",
        "priority",
        "fairness_key",
        "steps",
    }
    assert (status["priority"], status["fairness_key"]) == (0, None)
    listed = json.loads(orch("runs", "--json", "--workflow", wf_name).stdout)
    assert run_id in {r["id"] for r in listed}
    assert all(r["version"] == 1 for r in listed)

    by_name = orch("submit", wf_name, "--input", '{"value": 2}', "--wait", "--json")
    assert json.loads(by_name.stdout)["result"] == {"b": 2, "c": 1}


def test_submit_key_is_idempotent(tmp_path: Path, wf_name: str, workers: WorkerPool) -> None:
    spec = write_spec(tmp_path, wf_name, DIAMOND)
    first = orch("submit", str(spec), "--key", "order-42").stdout.strip()
    second = orch("submit", str(spec), "--key", "order-42").stdout.strip()
    assert first == second


def test_failed_run_exits_1_and_bad_input_exits_2(
    tmp_path: Path, wf_name: str, workers: WorkerPool
) -> None:
    spec = write_spec(tmp_path, wf_name, '  a: {task: "tests.steps.basic:boom"}\n')
    proc = orch("submit", str(spec), "--wait", "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["state"] == "FAILED"
    assert "boom" in doc["error"]
    assert_one_line_error(
        orch("submit", str(spec), "--input", "{bad"), 2, "--input", "invalid JSON"
    )
    assert_one_line_error(orch("submit", str(spec), "--input", "[1]"), 2, "JSON object")
    assert_one_line_error(orch("status", "0000000000000000"), 2, "not found")
    changed = write_spec(tmp_path, wf_name, '  a: {task: "tests.steps.basic:emit"}\n')
    assert_one_line_error(orch("submit", str(changed)), 2, "already registered", "bump the version")
    assert orch("no-such-command").returncode == 2


def test_embedded_default_dev_and_submit_from_second_shell(tmp_path: Path, wf_name: str) -> None:
    """`orch dev` starts a private Redis (AOF on) that `orch submit` finds via ORCH_DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "ORCH_REDIS_URL"}
    env["ORCH_DATA_DIR"] = str(tmp_path / "data")
    dev = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "dev", "-c", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state = tmp_path / "data" / "redis.json"
        deadline = time.monotonic() + 60
        while not (state.exists() and list((tmp_path / "data" / "logs").glob("*.log"))):
            assert dev.poll() is None, dev.stdout.read() if dev.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        spec = write_spec(tmp_path, wf_name, DIAMOND)
        proc = orch(
            "submit",
            str(spec),
            "--input",
            '{"value": 3}',
            "--wait",
            "--json",
            "--timeout",
            "60",
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["result"] == {"b": 3, "c": 1}
        assert list((tmp_path / "data").glob("appendonlydir*")), "AOF must be on"
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(30)
    assert not (tmp_path / "data" / "redis.json").exists()
    after = orch("runs", env=env)
    assert after.returncode == 3


def test_embedded_redis_restart_keeps_data(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r")
    server.start()
    try:
        import redis

        conn = redis.Redis.from_url(server.url)
        assert conn.config_get("appendonly")["appendonly"] == "yes"
        conn.set("kept", "1")
        conn.execute_command("BGREWRITEAOF")
        time.sleep(1.5)  # appendfsync everysec
        server.kill()
        server.start()
        assert redis.Redis.from_url(server.url).get("kept") == b"1"
    finally:
        server.stop()
