"""Queueing from the command line: --priority, --fairness-key, exit 4 on refusal, `orch queues`.

The workflow's queue is one no worker consumes, so what is submitted stays
where the CLI can see it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from orchestrator.embedded import EmbeddedRedis
from tests.cli.test_cli import assert_one_line_error, orch

pytestmark = pytest.mark.integration


def spec(tmp_path: Path, name: str, queue: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nversion: 1\nmax_queued: 2\n"
        "fairness: {key: input.tenant, max_queued: 1}\n"
        f'steps:\n  a: {{task: "tests.steps.basic:emit", queue: {queue}}}\n'
    )
    return path


def test_submit_queues_and_refuses_over_the_backlog(
    tmp_path: Path, redis_server: EmbeddedRedis, wf_name: str
) -> None:
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    path = spec(tmp_path, wf_name, queue)
    first = orch("submit", str(path), "--input", '{"tenant": "acme"}', "--priority", "6")
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip()
    same_key = orch("submit", str(path), "--input", '{"tenant": "acme"}')
    assert_one_line_error(same_key, 4, "fairness key 'acme'", "fairness.max_queued=1")
    other = orch("submit", str(path), "--input", '{"tenant": "zeta"}', "--fairness-key", "beta")
    assert other.returncode == 0, other.stderr
    full = orch("submit", str(path), "--input", '{"tenant": "gamma"}')
    assert_one_line_error(full, 4, f"workflow {wf_name!r}", "max_queued=2", "2 runs waiting")

    listed = orch("runs", "--fairness-key", "acme", "--workflow", wf_name, "--json")
    assert [d["id"] for d in json.loads(listed.stdout)] == [run_id]
    assert json.loads(listed.stdout)[0]["priority"] == 6

    view = orch("queues", "--json")
    assert view.returncode == 0, view.stderr
    doc = json.loads(view.stdout)
    mine = [r for r in doc["queues"] if r["queue"] == queue]
    assert [(r["priority"], r["depth"], r["held"]) for r in mine] == [(6, 1, False), (0, 1, False)]
    assert all(r["oldest_age"] is not None and r["oldest_age"] >= 0 for r in mine)
    backlog = {r["fairness_key"]: r["waiting"] for r in doc["backlogs"] if r["workflow"] == wf_name}
    assert backlog == {None: 2, "acme": 1, "beta": 1}
    assert doc["refused"] == {**doc["refused"], wf_name: 1, f"{wf_name}:acme": 1}
    table = orch("queues")
    assert table.returncode == 0 and queue in table.stdout, table.stderr


def test_a_priority_out_of_range_is_bad_usage(tmp_path: Path, redis_server: EmbeddedRedis) -> None:
    path = spec(tmp_path, f"p{uuid.uuid4().hex[:6]}", "nowhere")
    proc = orch("submit", str(path), "--priority", "12")
    assert_one_line_error(proc, 2, "--priority", "9")
