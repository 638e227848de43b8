"""The spec models, the YAML loader and the Python DSL: one model, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator import Flow, SpecError, load_workflow
from orchestrator.loader import workflow_from_data
from orchestrator.spec import Dependency, RetryPolicy, StepSpec, Workflow, json_schema
from tests.unit import stepfns

TASK = "tests.unit.stepfns:noop"


def data(steps: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    return {"name": "spec", "version": 1, "steps": steps or {"a": {"task": TASK}}, **top}


def spec_error(payload: object) -> str:
    with pytest.raises(SpecError) as info:
        workflow_from_data(payload)
    message = str(info.value)
    assert "\n" not in message
    return message


def write(tmp_path: Path, text: str | bytes, name: str = "wf.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def load_error(path: Path, **kwargs: Any) -> str:
    """load_workflow must fail with a SpecError (and nothing else) of one line."""
    try:
        load_workflow(path, **kwargs)
    except SpecError as exc:
        message = str(exc)
    except Exception as exc:
        pytest.fail(f"load_workflow raised {type(exc).__name__}: {exc} (expected SpecError)")
    else:
        pytest.fail("load_workflow accepted an invalid file")
    assert "\n" not in message, f"multi-line error: {message!r}"
    return message


# --- durations and rates -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5s", 1.5),
        ("10", 10.0),
        (" 10 s ", 10.0),
        ("0", 0.0),
        (3, 3.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_durations_parse(text: object, seconds: float) -> None:
    wf = workflow_from_data(data({"a": {"task": TASK, "timeout": text}}))
    assert wf.steps["a"].timeout == seconds
    policy = RetryPolicy(initial=text, max=max(seconds, 1.0))
    assert policy.initial == seconds


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("60/m", 1.0), ("10/s", 10.0), ("3600/h", 1.0), ("1 / s", 1.0), (5, 5.0)],
)
def test_rates_parse(text: object, per_second: float) -> None:
    assert Dependency(rate=text).rate == per_second


@pytest.mark.parametrize("bad", ["10x", "-1s", "soon", "", "1e5s", "1,5s", "10 ss", "s", -1])
def test_bad_durations_name_step_and_field(bad: object) -> None:
    message = spec_error(data({"a": {"task": TASK}, "b": {"task": TASK, "timeout": bad}}))
    assert "step 'b', field 'timeout'" in message


def test_bad_duration_inside_retry_names_the_nested_field() -> None:
    message = spec_error(data({"a": {"task": TASK, "retry": {"initial": "soon"}}}))
    assert "step 'a', field 'retry.initial'" in message
    assert "'soon'" in message


@pytest.mark.parametrize("bad", ["60/d", "0/s", "fast", "60/", "/m", "-1/s", 0])
def test_bad_rates_name_the_dependency_field(bad: object) -> None:
    message = spec_error(data({"a": {"task": TASK}}, dependencies={"llm": {"rate": bad}}))
    assert "field 'dependencies.llm.rate'" in message


def test_retry_initial_above_max_is_refused() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(initial=10, max=5)
    assert RetryPolicy(initial=5, max=5).initial == 5
    message = spec_error(data({"a": {"task": TASK, "retry": {"initial": "10s", "max": "5s"}}}))
    assert message.startswith("workflow: step 'a', field 'retry': ")
    assert "initial" in message and "max" in message
    message = spec_error(data(retry={"initial": "2m", "max": "1m"}))
    assert "field 'retry'" in message


@pytest.mark.parametrize("fields", [{"task": TASK, "wait_for": "approval"}, {}, {"after": ["x"]}])
def test_a_step_needs_exactly_one_of_task_and_wait_for(fields: dict[str, Any]) -> None:
    message = spec_error(data({"a": {"task": TASK}, "b": fields}))
    assert "step 'b'" in message
    assert "task" in message and "wait_for" in message
    with pytest.raises(ValidationError):
        StepSpec(**fields)


def test_wait_for_step_alone_is_fine() -> None:
    wf = workflow_from_data(data({"a": {"wait_for": "approval", "timeout": "1d"}}))
    assert wf.steps["a"].wait_for == "approval"
    assert wf.steps["a"].timeout == 86400.0


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (data({"a": {"task": TASK, "aftr": ["x"]}}), "step 'a', field 'aftr'"),
        (data({"a": {"task": "not a path"}}), "step 'a', field 'task'"),
        (data({"a": {"task": TASK, "trigger": "sometimes"}}), "step 'a', field 'trigger'"),
        (data({"a": {"task": TASK, "retry": {"max_attempts": 0}}}), "retry.max_attempts"),
        (data({"a": {"task": TASK, "queue": "bad queue"}}), "step 'a', field 'queue'"),
        (data({"1bad": {"task": TASK}}), "step '1bad'"),
        ({**data(), "name": "Bad Name"}, "field 'name'"),
        ({**data(), "version": 0}, "field 'version'"),
        ({**data(), "extra": 1}, "field 'extra'"),
        ({"name": "x", "version": 1, "steps": {}}, "field 'steps'"),
        ({"name": "x", "version": 1}, "field 'steps'"),
    ],
)
def test_model_errors_are_one_line_and_say_where(payload: dict[str, Any], where: str) -> None:
    assert where in spec_error(payload)


@pytest.mark.parametrize("payload", [None, [], "name: x", 3, ["name", "x"]])
def test_non_mapping_data_is_refused(payload: object) -> None:
    assert "mapping" in spec_error(payload)


def test_models_are_frozen() -> None:
    wf = workflow_from_data(data())
    with pytest.raises(ValidationError):
        wf.version = 2  # type: ignore[misc]


# --- canonical hash ----------------------------------------------------------


def test_hash_ignores_spelling_of_durations() -> None:
    spellings = ["0.5s", 0.5, "500ms", " 0.5 s "]
    hashes = {
        workflow_from_data(data({"a": {"task": TASK, "timeout": s}})).content_hash
        for s in spellings
    }
    assert len(hashes) == 1
    rates = {
        workflow_from_data(data(dependencies={"llm": {"rate": r}})).content_hash
        for r in ["60/m", "1/s", 1, "3600/h"]
    }
    assert len(rates) == 1


def test_hash_ignores_key_order() -> None:
    one = workflow_from_data(
        {
            "name": "x",
            "version": 1,
            "steps": {"a": {"task": TASK}, "b": {"after": ["a"], "task": TASK}},
        }
    )
    two = workflow_from_data(
        {
            "steps": {"b": {"task": TASK, "after": ["a"]}, "a": {"task": TASK}},
            "version": 1,
            "name": "x",
        }
    )
    assert one.content_hash == two.content_hash
    assert one.canonical_json() == two.canonical_json()


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"name": "other"},
        {"description": "changed"},
        {"steps": {"a": {"task": "tests.unit.stepfns:fetch"}}},
        {"steps": {"a": {"task": TASK, "timeout": "1s"}}},
        {"steps": {"a": {"task": TASK}, "b": {"task": TASK}}},
        {"retry": {"max_attempts": 4}},
    ],
)
def test_hash_changes_with_content(change: dict[str, Any]) -> None:
    base = workflow_from_data(data())
    changed = workflow_from_data({**data(), **change})
    assert changed.content_hash != base.content_hash
    assert re.fullmatch(r"[0-9a-f]{16}", base.content_hash)


def test_canonical_json_round_trips() -> None:
    wf = workflow_from_data(
        data(
            {"a": {"task": TASK, "retry": {"initial": "1s"}}, "b": {"task": TASK, "map": "a"}},
            dependencies={"llm": {"rate": "60/m", "breaker": {"open_for": "30s"}}},
        )
    )
    again = Workflow.from_json(wf.canonical_json())
    assert again == wf
    assert again.content_hash == wf.content_hash


# --- YAML files ----------------------------------------------------------------

GOOD_YAML = """\
name: triage
version: 3
dependencies:
  llm: {rate: 60/m, concurrency: 4}
steps:
  fetch:    {task: "tests.unit.stepfns:fetch", retry: {max_attempts: 4, initial: 0.5s, max: 10s}}
  classify: {task: "tests.unit.stepfns:classify", after: [fetch], dependency: llm}
  chunk:    {task: "tests.unit.stepfns:chunk", map: fetch, queue: embed}
"""


def test_good_yaml_loads(tmp_path: Path) -> None:
    wf = load_workflow(write(tmp_path, GOOD_YAML))
    assert wf.ref == "triage:3"
    assert wf.steps["fetch"].retry == RetryPolicy(max_attempts=4, initial=0.5, max=10)
    assert wf.steps["chunk"].upstreams == ("fetch",)
    assert wf.dependencies["llm"].rate == 1.0
    assert load_workflow(str(write(tmp_path, GOOD_YAML, "again.yaml"))) == wf


def test_json_file_loads(tmp_path: Path) -> None:
    wf = load_workflow(write(tmp_path, GOOD_YAML))
    path = write(tmp_path, wf.canonical_json(), "wf.json")
    assert load_workflow(path).content_hash == wf.content_hash


def test_duplicate_step_names_are_refused(tmp_path: Path) -> None:
    text = (
        "name: d\nversion: 1\nsteps:\n  a: {task: 'm:f'}\n  b: {task: 'm:f'}\n  a: {task: 'm:g'}\n"
    )
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "duplicate key 'a'" in message
    assert "line 6" in message


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: d\nname: e\nversion: 1\nsteps: {a: {task: 'm:f'}}\n", "name", 2),
        ("name: d\nversion: 1\nsteps:\n  a:\n    task: 'm:f'\n    task: 'm:g'\n", "task", 6),
        ("name: d\nversion: 1\nsteps: {a: {task: 'm:f', after: [], after: []}}\n", "after", 3),
    ],
)
def test_duplicate_keys_anywhere_are_refused(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    message = load_error(write(tmp_path, text))
    assert f"duplicate key {key!r}" in message
    assert f"line {line}" in message


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nversion: 1\nsteps: {a: {task: 'm:f'}\n",
        "name: x\n  version: 1\n",
        "name: [x\n",
        "steps:\n\t- a\n",
        "name: 'x\n",
    ],
)
def test_invalid_yaml_names_path_line_and_column(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: \d+:\d+: invalid YAML: .+", message), message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n", "", "~\n"])
def test_non_mapping_yaml_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "mapping" in message


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    message = load_error(path)
    assert message.startswith(f"{path}: cannot read file")


def test_graph_errors_carry_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nversion: 1\nsteps: {a: {task: 'm:f', after: [zz]}}\n")
    message = load_error(path)
    assert message == f"{path}: step 'a', field 'after': unknown step 'zz'"


def test_model_errors_carry_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nversion: 1\nsteps: {a: {task: 'm:f', timeout: soon}}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: step 'a', field 'timeout': ")


def test_visibility_timeout_is_checked_on_load(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nversion: 1\nsteps: {a: {task: 'm:f', retry: {max: 2h}}}\n")
    message = load_error(path, visibility_timeout=3600)
    assert "step 'a', field 'retry.max'" in message
    assert load_workflow(path, visibility_timeout=7201).steps["a"].retry is not None


def test_unimportable_task_names_step_and_field(tmp_path: Path) -> None:
    text = "name: x\nversion: 1\nsteps:\n  ok: {task: 'tests.unit.stepfns:noop'}\n"
    text += "  bad: {task: 'nonexistent.module:fn', after: [ok]}\n"
    path = write(tmp_path, text)
    assert load_workflow(path).steps["bad"].task == "nonexistent.module:fn"
    message = load_error(path, import_tasks=True)
    assert message.startswith(f"{path}: step 'bad', field 'task': ")
    assert "nonexistent.module:fn" in message


def test_control_character_error_is_one_line(tmp_path: Path) -> None:
    """PyYAML's ReaderError has no ``problem``; its str() spans two lines."""
    path = write(tmp_path, "name: x\x07\nversion: 1\nsteps: {a: {task: 'm:f'}}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "invalid YAML" in message


def test_invalid_utf8_is_a_spec_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"name: x\xff\nversion: 1\nsteps: {a: {task: 'm:f'}}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: ")


def test_unhashable_mapping_key_is_a_spec_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nversion: 1\nsteps:\n  ? [a, b]\n  : {task: 'm:f'}\n")
    message = load_error(path)
    assert message.startswith(f"{path}: ")


yaml_fragments = st.sampled_from(
    [
        "name: ", "version: ", "steps:", "\n", "  ", "a: ", "{", "}", "[", "]", ",", ":", "-",
        "task: ", "'m:f'", "after: ", "map: ", "retry: ", "max: ", "10s", "1", "x", "&a ", "*a",
        "? ", "!!str ", "#", "\"", "'", "~", "null", "true", "1.5", "<<: ",
    ]
)  # fmt: skip
yaml_texts = st.one_of(
    st.lists(yaml_fragments, max_size=30).map("".join),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs"), max_codepoint=0x2FF)
        | st.just("\n"),
        max_size=80,
    ),
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=yaml_texts)
def test_load_workflow_raises_only_one_line_spec_errors(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    try:
        load_workflow(path)
    except SpecError as exc:
        assert "\n" not in str(exc)


# --- the Python DSL ------------------------------------------------------------


def test_flow_builds_the_same_workflow_as_yaml(tmp_path: Path) -> None:
    flow = (
        Flow("triage", 3, dependencies={"llm": {"rate": "60/m", "concurrency": 4}})
        .step("fetch", stepfns.fetch, retry={"max_attempts": 4, "initial": "500ms", "max": 10})
        .step("classify", stepfns.classify, after=["fetch"], dependency="llm")
        .step("chunk", stepfns.chunk, map="fetch", queue="embed")
    )
    built = flow.build()
    loaded = load_workflow(write(tmp_path, GOOD_YAML))
    assert built == loaded
    assert built.content_hash == loaded.content_hash
    assert built.steps["classify"].task == "tests.unit.stepfns:classify"
    assert flow.build(import_tasks=True) == built


def test_flow_records_callables_in_other_task_fields() -> None:
    wf = (
        Flow("f", 1)
        .step("a", stepfns.fetch, fallback=stepfns.noop, compensate=stepfns.noop)
        .build()
    )
    assert wf.steps["a"].fallback == "tests.unit.stepfns:noop"
    assert wf.steps["a"].compensate == "tests.unit.stepfns:noop"


def test_flow_accepts_string_paths_and_wait_for() -> None:
    wf = Flow("f", 1).step("a", TASK).step("b", wait_for="approval", after=["a"]).build()
    assert wf.steps["a"].task == TASK
    assert wf.steps["b"].wait_for == "approval"


def test_flow_refuses_a_duplicate_step() -> None:
    flow = Flow("f", 1).step("a", TASK)
    with pytest.raises(SpecError) as info:
        flow.step("a", TASK)
    assert "step 'a'" in str(info.value)
    assert "duplicate" in str(info.value)


def test_flow_refuses_a_lambda() -> None:
    with pytest.raises(SpecError) as info:
        Flow("f", 1).step("a", lambda: None)
    assert "step 'a'" in str(info.value)
    assert "\n" not in str(info.value)


def test_flow_refuses_a_nested_function() -> None:
    def inner() -> None:
        return None

    with pytest.raises(SpecError, match="step 'a'"):
        Flow("f", 1).step("a", inner)
    with pytest.raises(SpecError, match="field 'fallback'"):
        Flow("f", 1).step("a", TASK, fallback=inner)


def test_flow_build_validates_the_graph() -> None:
    with pytest.raises(SpecError, match="cycle"):
        Flow("f", 1).step("a", TASK, after=["b"]).step("b", TASK, after=["a"]).build()
    with pytest.raises(SpecError, match=r"workflow 'f': step 'a', field 'timeout'"):
        Flow("f", 1).step("a", TASK, timeout="soon").build()


# --- JSON schema ---------------------------------------------------------------


def test_json_schema() -> None:
    schema = json_schema()
    assert isinstance(schema, dict)
    assert {"name", "version", "steps"} <= set(schema["properties"])
    assert set(schema["required"]) >= {"name", "version", "steps"}
    json.dumps(schema)  # printable by `orch schema`
    text = json.dumps(schema)
    assert "wait_for" in text and "retry" in text
