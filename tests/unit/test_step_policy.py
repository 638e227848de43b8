"""Only @step functions, from allowed modules, may be named as code by a spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Flow, validate
from orchestrator.errors import SpecError, TaskRefusedError
from orchestrator.graph import check_steps
from orchestrator.resilience import is_retryable
from orchestrator.spec import RetryPolicy
from orchestrator.step_policy import module_allowed
from orchestrator.steps import import_task, step
from tests.unit import stepfns

WHERE = "step 'a', field 'task'"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", ["os:system", "subprocess:getoutput", "tests.unit.stepfns:Document.model_validate"]
)
def test_a_callable_not_marked_as_a_step_is_refused(path: str) -> None:
    with pytest.raises(TaskRefusedError, match="is not a step") as info:
        import_task(path, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE) and path in message and "\n" not in message


def test_a_marked_step_is_imported_and_a_library_function_can_be_marked() -> None:
    assert import_task("tests.unit.stepfns:fetch") is stepfns.fetch

    def helper(x: int) -> int:
        return x

    assert step(helper) is helper  # `name = step(library.fn)` marks it in place


def test_a_dunder_hop_is_refused_before_it_is_followed() -> None:
    with pytest.raises(TaskRefusedError, match="dunder"):
        import_task("tests.unit.stepfns:fetch.__globals__.get")


def test_a_refusal_is_never_retried_and_is_a_usage_error() -> None:
    exc = TaskRefusedError("x is not a step")
    assert isinstance(exc, SpecError)
    assert not is_retryable(exc, RetryPolicy())
    assert exc.exit_code == 2


@pytest.mark.parametrize(
    ("module", "prefixes", "allowed"),
    [
        ("tests.unit.stepfns", (), True),
        ("tests.unit.stepfns", ("tests",), True),
        ("tests.unit.stepfns", ("tests.unit.stepfns",), True),
        ("tests.unit.stepfns", ("tests.unit.step",), False),
        ("testsuite.x", ("tests",), False),
        ("os", ("myapp", "tests"), False),
    ],
)
def test_module_prefixes(module: str, prefixes: tuple[str, ...], allowed: bool) -> None:
    assert module_allowed(module, prefixes) is allowed


def test_orch_task_modules_refuses_before_importing() -> None:
    """In a fresh interpreter: a refused module is not even imported."""
    code = (
        "import sys\n"
        "from orchestrator.errors import TaskRefusedError\n"
        "from orchestrator.steps import import_task\n"
        "try:\n"
        "    import_task('tests.steps.import_trap:caught')\n"
        "except TaskRefusedError as exc:\n"
        "    print('refused:', exc)\n"
        "print('imported' if 'tests.steps.import_trap' in sys.modules else 'not imported')\n"
        "print(import_task('tests.unit.stepfns:fetch').__name__)\n"
    )
    env = {"ORCH_TASK_MODULES": "tests.unit, orchestrator", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    ).stdout.splitlines()
    assert out[0].startswith("refused:") and "outside ORCH_TASK_MODULES" in out[0], out
    assert out[1:] == ["not imported", "fetch"]


def test_validate_with_imports_refuses_non_steps_in_every_code_field() -> None:
    for field in ("compensate", "fallback", "when"):
        flow = Flow("p", 1).step("a", "tests.unit.stepfns:noop", **{field: "os:system"})
        wf = flow.build()
        with pytest.raises(TaskRefusedError, match="is not a step") as info:
            validate(wf, import_tasks=True)
        assert str(info.value).startswith(f"step 'a', field '{field}'")


def test_check_steps_refuses_what_it_can_import_and_leaves_the_rest() -> None:
    wf = Flow("p", 1).step("a", "no_such_module:fn").step("b", "tests.unit.stepfns:noop").build()
    assert check_steps(wf, ()) == ["no_such_module:fn"]
    bad = Flow("p", 1).step("a", "no_such_module:fn").step("b", "subprocess:getoutput").build()
    with pytest.raises(TaskRefusedError, match="step 'b', field 'task'"):
        check_steps(bad, ())
    with pytest.raises(TaskRefusedError, match="outside ORCH_TASK_MODULES"):
        check_steps(wf, ("tests.unit",))
