"""Output that fits an 80-column terminal and says what it shows.

Run ids are what users copy, so tables keep them whole and let other columns
fold. The demo's per-step table labels a total as a total. ``orch plan`` does
not show a join as a member of the group before it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestrator import Client, Flow
from orchestrator.cli._demo import _runs_table, _steps_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "orchestrator" / "examples" / "document-triage.yaml"


def orch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def render(table: Any, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO())
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return str(text)


@pytest.mark.integration
def test_orch_runs_shows_whole_ids_at_80_columns(client: Client, wf_name: str) -> None:
    long_name = wf_name + "-with-a-rather-long-workflow-name"
    flow = Flow(long_name, 1).step("a", "tests.steps.basic:noop", queue=f"q-{uuid.uuid4().hex}")
    ids = {client.submit(flow.build(), {}).id for _ in range(3)}
    proc = orch("runs", "--workflow", long_name)
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    for run_id in ids:
        assert run_id in proc.stdout, proc.stdout
    stuck = orch("runs", "--workflow", long_name, "--stuck", "--stuck-after", "0")
    assert all(run_id in stuck.stdout for run_id in ids), stuck.stdout


def _doc(i: int, url: str) -> dict[str, Any]:
    step = {"queued_at": None, "started_at": None, "finished_at": None}
    return {
        "id": f"{i:016x}",
        "input": {"url": url},
        "state": "SUCCEEDED",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "finished_at": "2026-01-01T00:00:01.250000Z",
        "steps": {
            "fetch": {**step, "state": "SUCCEEDED", "attempts": 2},
            "embed": {**step, "state": "SUCCEEDED", "attempts": 5, "elements": 4},
        },
    }


def test_the_demo_tables_fit_80_columns_with_whole_ids_and_truthful_labels() -> None:
    url = "https://example.com/a/document/with/a/very/long/path/that/goes/on/and/on/" * 2
    docs = [_doc(0xABCDEF0123456789 + i, url) for i in range(3)]
    runs = render(_runs_table(docs))
    assert max(len(line) for line in runs.splitlines()) <= 80
    for d in docs:
        assert d["id"] in runs
    table = _steps_table(docs)
    assert [c.header for c in table.columns] == [
        "step",
        "queue wait (median)",
        "ran for (median)",
        "attempts (total)",
        "retried runs",
    ]
    assert "median times; attempts and retried runs in total" in str(table.title)
    steps = render(table)
    assert max(len(line) for line in steps.splitlines()) <= 80
    rows = {line.split("│")[1].strip(): line for line in steps.splitlines() if "│" in line}
    assert rows["fetch"].split("│")[4].strip() == "6", "attempts are summed over the runs"
    assert rows["embed"].split("│")[4].strip() == "15"


def test_plan_never_shows_a_join_inside_a_group() -> None:
    doc = json.loads(orch("plan", str(EXAMPLE), "--json").stdout)
    joins = {name for name, s in doc["steps"].items() if s["join"] > 1}
    assert joins >= {"summarize", "store", "publish"}
    for seg in doc["canvas"]:
        assert not set(seg["group"]) & joins, seg
        assert set(seg["group"]) | set(seg["feeds_joins"]) == set(seg["fan_out"])
    text = orch("plan", str(EXAMPLE))
    assert text.returncode == 0, text.stderr
    canvas = text.stdout.split("Canvas:", 1)[1]
    groups = [line.split("group(", 1)[1].split(")", 1)[0] for line in canvas.splitlines()
              if "group(" in line]  # fmt: skip
    assert groups, canvas
    for members in groups:
        assert not {m.strip() for m in members.split(",")} & joins, canvas
    assert "fetch → chain(classify) → review; counts toward joins: store, summarize" in canvas
