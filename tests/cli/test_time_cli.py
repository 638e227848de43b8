"""The CLI's side of time: `orch validate` on the time fields, `submit --deadline`, and
`orch runs` showing the time a run has left."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from orchestrator.cli._run import runs_table, time_left
from orchestrator.embedded import EmbeddedRedis
from tests.cli.test_exit_codes import error_line, orch
from tests.cli.test_output import render


def spec_file(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "timed.yaml"
    steps = {"a": {"task": "tests.steps.basic:noop"}, "nap": {"after": ["a"], **fields}}
    path.write_text(yaml.safe_dump({"name": "timed", "version": 1, "steps": steps}))
    return path


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"sleep": "forever"}, "step 'nap', field 'sleep'"),
        ({"until": "b.at"}, "step 'nap', field 'until': 'b.at' reads step 'b'"),
        ({"sleep": "1m", "compensate": "none"}, "step 'nap', field 'compensate'"),
    ],
)
def test_validate_refuses_bad_time_fields_in_one_line(
    tmp_path: Path, fields: dict[str, object], says: str
) -> None:
    line = error_line(orch("validate", str(spec_file(tmp_path, **fields))), 2)
    assert says in line


def test_validate_accepts_a_sleep(tmp_path: Path) -> None:
    proc = orch("validate", str(spec_file(tmp_path, sleep="10m")))
    assert proc.returncode == 0, proc.stderr


def test_time_left_reads_like_a_clock() -> None:
    assert [time_left(s) for s in (None, -3, 42.9, 125, 7322)] == [
        "",
        "passed",
        "42s left",
        "2m 05s left",
        "2h 02m left",
    ]


def test_runs_shows_the_time_a_live_run_has_left(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    name = f"late-{uuid.uuid4().hex[:8]}"
    queue = f"nobody-{uuid.uuid4().hex[:8]}"  # no worker consumes it: the run stays live
    spec = {"name": name, "version": 1, "steps": {"a": {"task": "tests.steps.basic:noop"}}}
    spec["steps"]["a"]["queue"] = queue
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    bad = orch("submit", str(path), "--deadline", "soon")
    assert "submit, deadline" in error_line(bad, 2)
    proc = orch("submit", str(path), "--deadline", "1h", "--json")
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["id"]
    listed = orch("runs", "--workflow", name, "--json")
    [doc] = json.loads(listed.stdout)
    assert doc["id"] == run_id
    assert 0 < doc["deadline_in"] <= 3600
    assert doc["deadline_at"] is not None
    assert "left" in render(runs_table([doc]), width=120)


def test_schedule_commands_add_list_pause_resume_remove(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    name = f"nightly-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "wf.yaml"
    steps = {"a": {"task": "tests.steps.basic:noop", "queue": f"nobody-{name}"}}
    path.write_text(yaml.safe_dump({"name": f"w-{name}", "version": 1, "steps": steps}))
    add = orch(
        "schedule", "add", name, str(path), "--cron", "0 3 * * *", "--tz", "Europe/Paris",
        "--input", '{"x": 1}', "--overlap", "queue", "--catchup", "2", "--json",
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    doc = json.loads(add.stdout)
    assert (doc["workflow"], doc["tz"], doc["overlap"], doc["catchup"]) == (
        f"w-{name}:1",
        "Europe/Paris",
        "queue",
        2,
    )
    assert doc["next_at"].endswith(("T01:00:00.000000Z", "T02:00:00.000000Z"))  # 03:00 Paris
    again = orch("schedule", "add", name, str(path), "--cron", "0 3 * * *")
    assert f"schedule {name!r} exists" in error_line(again, 2)
    listed = {d["name"]: d for d in json.loads(orch("schedule", "list", "--json").stdout)}
    assert listed[name]["paused"] is False
    paused = orch("schedule", "pause", name, "--json")
    assert json.loads(paused.stdout) == {"name": name, "paused": True}
    assert json.loads(orch("schedule", "pause", name, "--json").stdout)["paused"] is False
    table = orch("schedule", "list")
    assert name in table.stdout and "paused" in table.stdout
    assert json.loads(orch("schedule", "resume", name, "--json").stdout)["resumed"] is True
    assert orch("schedule", "remove", name).returncode == 0
    assert "not found" in error_line(orch("schedule", "pause", name), 2)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--cron", "0 25 * * *"), "field 'cron'"),
        (("--cron", "0 3 * * *", "--tz", "Nowhere/Land"), "not an IANA time zone"),
        (("--cron", "0 3 * * *", "--overlap", "maybe"), "field 'overlap'"),
    ],
)
def test_schedule_add_refuses_bad_options_in_one_line(
    redis_server: EmbeddedRedis, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    path = tmp_path / "wf.yaml"
    steps = {"a": {"task": "tests.steps.basic:noop"}}
    path.write_text(yaml.safe_dump({"name": "w-bad-schedule", "version": 1, "steps": steps}))
    assert says in error_line(orch("schedule", "add", "bad", str(path), *args), 2)


def test_plan_says_what_a_sleep_step_waits_for(tmp_path: Path) -> None:
    path = spec_file(tmp_path, sleep="10m")
    proc = orch("plan", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "sleep 600s" in proc.stdout
    doc = json.loads(orch("plan", str(path), "--json").stdout)
    assert doc["steps"]["nap"]["sleep"] == 600.0
