"""The time fields of a spec: `sleep:`, `until:` and `deadline:`, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import SpecError, load_workflow
from orchestrator.compiler import compile_plan
from orchestrator.spec import Workflow, json_schema, positive_duration
from orchestrator.store.records import step_record

TASK = "tests.unit.stepfns:noop"


def load(tmp_path: Path, steps: dict[str, Any], **top: Any) -> Workflow:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump({"name": "timed", "version": 1, **top, "steps": steps}))
    return load_workflow(str(path))


def error(tmp_path: Path, steps: dict[str, Any], **top: Any) -> str:
    with pytest.raises(SpecError) as info:
        load(tmp_path, steps, **top)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_sleep_until_and_deadline_load_and_reach_the_plan_records(tmp_path: Path) -> None:
    wf = load(
        tmp_path,
        {
            "a": {"task": TASK},
            "nap": {"sleep": "10m", "after": ["a"]},
            "wait": {"until": "a.send.at", "after": ["a"]},
        },
        deadline="1h",
    )
    assert (wf.steps["nap"].sleep, wf.deadline) == (600.0, 3600.0)
    plan = compile_plan(wf)
    assert step_record(plan, "nap")["sleep"] == 600.0
    assert step_record(plan, "wait")["until"] == "a.send.at"
    assert "sleep" not in step_record(plan, "a") and "until" not in step_record(plan, "a")


def test_a_spec_without_the_time_fields_keeps_its_canonical_form(tmp_path: Path) -> None:
    canonical = json.loads(load(tmp_path, {"a": {"task": TASK}}).canonical_json())
    assert "deadline" not in canonical
    assert not {"sleep", "until"} & set(canonical["steps"]["a"])
    timed = load(tmp_path, {"a": {"task": TASK}}, deadline=60)
    assert json.loads(timed.canonical_json())["deadline"] == 60.0


@pytest.mark.parametrize(
    ("steps", "top", "where", "says"),
    [
        ({"a": {"task": TASK, "sleep": "1m"}}, {}, "step 'a'", "exactly one of 'task'"),
        ({"a": {"sleep": "soon"}}, {}, "step 'a', field 'sleep'", "not a duration"),
        ({"a": {"sleep": "-5s"}}, {}, "step 'a', field 'sleep'", "not a duration"),
        ({"a": {"task": TASK}, "b": {"until": "a.at"}}, {}, "field 'until'", "not in 'after'"),
        ({"a": {"until": "a b"}}, {}, "step 'a', field 'until'", "pattern"),
        ({"a": {"sleep": 5, "retry": {}}}, {}, "field 'retry'", "sleep step runs no code"),
        ({"a": {"sleep": 5, "timeout": 3}}, {}, "field 'timeout'", "only a wait_for step"),
        ({"a": {"task": TASK}}, {"deadline": 0}, "field 'deadline'", "greater than 0"),
        ({"a": {"task": TASK}}, {"deadline": "1 week"}, "field 'deadline'", "not a duration"),
    ],
)
def test_bad_time_fields_are_one_line_errors_naming_where(
    tmp_path: Path, steps: dict[str, Any], top: dict[str, Any], where: str, says: str
) -> None:
    message = error(tmp_path, steps, **top)
    assert where in message
    assert says in message


def test_the_json_schema_describes_the_time_fields() -> None:
    schema = json_schema()
    assert "deadline" in schema["properties"]
    step = schema["$defs"]["StepSpec"]["properties"]
    assert {"sleep", "until"} <= set(step)


def test_submit_deadlines_are_positive_durations() -> None:
    assert positive_duration("90s", where="submit") == 90.0
    assert positive_duration(None, where="submit") is None
    for bad in ("never", 0, -1, True):
        with pytest.raises(SpecError, match="submit"):
            positive_duration(bad, where="submit")  # type: ignore[arg-type]
