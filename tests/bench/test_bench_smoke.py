"""The benchmark as ``make bench`` runs it, in its smallest form: does it run and report?

No timing is asserted: numbers depend on the machine. What is checked is that
the run finishes, that its JSON file has every field a reader relies on, and
that nothing it started outlives it, also when it is interrupted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"name", "unit", "better", "orch", "plain", "ratio", "target", "passed"}


def bench_env(mark: str, tmp: Path) -> dict[str, str]:
    """The environment of the benchmark; ``mark`` lets us find every process it starts.

    TMPDIR keeps its work directory (Redis data, worker logs, which an
    interrupted run leaves behind on purpose) inside the test's own.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "BENCH_"))}
    return {**env, "BENCH_TEST_MARK": mark, "TMPDIR": str(tmp)}


def marked_pids(mark: str) -> list[int]:
    """Live processes (not zombies) whose environment carries ``mark``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"BENCH_TEST_MARK={mark}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(mark: str, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := marked_pids(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def finished(argv: list[str], mark: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end from the checkout, in the benchmark's environment."""
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=bench_env(mark, tmp),
        timeout=120,
        check=False,
    )


def test_quick_run_writes_a_well_formed_report(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    proc = finished(
        [sys.executable, "-m", "bench", "--quick", "--only", "e,g,t", "--out", f"{tmp_path}/out"],
        mark,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "orch median" in proc.stdout, "the Rich table was not printed"
    assert wait_gone(mark) == [], "processes started by the benchmark outlived it"

    files = list((tmp_path / "out").glob("*.json"))
    assert len(files) == 1, files
    doc = json.loads(files[0].read_text())
    machine = doc["machine"]
    for key in ("cpu_count", "cpu_model", "python", "redis", "celery"):
        assert machine.get(key), key
    assert doc["mode"] == "quick"
    assert doc["rounds"] == 1
    assert set(doc["scenarios"]) == {"e", "g", "t"}

    for key, scenario in doc["scenarios"].items():
        metrics = scenario["metrics"]
        assert metrics, key
        for m in metrics:
            assert set(m) >= METRIC_KEYS, (key, m)
            assert m["better"] in ("higher", "lower")
            assert is_number(m["orch"]["median"]), (key, m["name"])
            assert m["orch"]["min"] <= m["orch"]["median"] <= m["orch"]["max"]
            if m["plain"]["median"] is not None:
                assert is_number(m["plain"]["median"])
                assert is_number(m["ratio"])
            if m["target"] is not None:
                assert {"kind", "op", "value", "text"} <= set(m["target"])
                assert isinstance(m["passed"], bool)
        both = [m for m in metrics if is_number(m["plain"]["median"]) and is_number(m["ratio"])]
        assert both, f"scenario {key} has no metric measured on both sides"
    assert any(m["target"] for m in doc["scenarios"]["g"]["metrics"])
    telemetry = doc["scenarios"]["t"]["details"]
    assert telemetry["spans_received"] == telemetry["spans_expected"], "a span per attempt and run"
    assert telemetry["otlp_requests"]["/v1/metrics"] >= 1


HOOKCOST = [sys.executable, "-m", "bench.hookcost"]


def test_hookcost_runs_every_configuration_and_exports_what_it_says(tmp_path: Path) -> None:
    """``python -m bench.hookcost``: each configuration's chains succeed (the child checks),
    and the traced one's spans, one per attempt and per run, all reach the receiver."""
    mark = uuid.uuid4().hex
    argv = [*HOOKCOST, "--runs", "3", "--rounds", "1", "--only", "none,hook,otel-all"]
    proc = finished(argv, mark, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()[2:5]}
    assert set(rows) == {"none", "hook", "otel-all"}, proc.stdout
    assert all(float(found[i]) > 0 for found in rows.values() for i in (0, 1, 3)), proc.stdout
    received, expected = re.findall(r"spans received: (\d+); (\d+)", proc.stdout)[0]
    assert int(received) == int(expected) == (3 + 20) * 11, proc.stdout
    assert wait_gone(mark) == [], "processes started by the benchmark outlived it"


def test_hookcost_counts_instructions_under_valgrind(tmp_path: Path) -> None:
    """``--instructions``: two counted children give a step's instructions (one
    configuration: valgrind's start-up is most of the test's time)."""
    mark = uuid.uuid4().hex
    argv = [*HOOKCOST, "--instructions", "--runs", "2", "--only", "hook"]
    proc = finished(argv, mark, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("instructions per step (valgrind), 2 and 6"), proc.stdout
    config, count = lines[2].split()
    # a step runs thousands of lines of Python: far more than 100k instructions, if counted
    assert config == "hook" and float(count) > 100_000, proc.stdout
    assert wait_gone(mark) == [], "processes started by the benchmark outlived it"


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    # Rounds enough that scenario a is still running when Ctrl-C comes, however fast the
    # machine: one quick round can end before the signal is sent.
    argv = ["--quick", "--rounds", "1000", "--only", "a", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=bench_env(mark, tmp_path),
    )
    lines: list[str] = []
    started = threading.Event()
    reader = threading.Thread(target=read_log, args=(proc, lines, started), daemon=True)
    reader.start()
    try:
        # Redis and both sides' workers are up once the first scenario begins.
        assert started.wait(120), "the benchmark never began scenario a:\n" + "".join(lines)
        assert len(marked_pids(mark)) > 3, "expected Redis and worker processes to be running"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
        reader.join(10)
        # 130, or death by SIGINT's default action once the cleanup is done (seen about once
        # in 20 runs, with nothing left behind): a shell shows both as 130.
        assert code in (130, -signal.SIGINT), f"exit {code} after Ctrl-C:\n" + "".join(lines)
        assert any("interrupted; stopping" in line for line in lines), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_gone(mark) == [], "processes started by the benchmark outlived Ctrl-C"
    assert not (tmp_path / "out").exists(), "an interrupted run must not write a report"


def read_log(proc: subprocess.Popen[str], lines: list[str], started: threading.Event) -> None:
    """Drain the benchmark's log, so it never blocks on a full pipe, and spot scenario a."""
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if "scenario a" in line:
            started.set()
    started.set()  # the log ended: the waiting test reads what it said
