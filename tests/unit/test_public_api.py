"""The public API is exactly ``orchestrator.__all__``, and importing it has no side effects."""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import orchestrator
from orchestrator.cli._lean import OTEL_METRICS

PUBLIC_API = [
    "AdmissionRefusedError",
    "Client",
    "Dependency",
    "Flow",
    "HandoffError",
    "Hooks",
    "NonRetryableError",
    "NotFoundError",
    "OrchestratorError",
    "PayloadTooLargeError",
    "Plan",
    "ReadOnlyClientError",
    "RedisOutOfMemoryError",
    "RedisPolicyError",
    "RedisUnavailableError",
    "RetryPolicy",
    "Run",
    "RunFailedError",
    "RunLostError",
    "RunState",
    "RunTimeoutError",
    "Settings",
    "SpecError",
    "StepCancelled",
    "StepContext",
    "StepSpec",
    "StepState",
    "TaskRefusedError",
    "Workflow",
    "WorkflowConflictError",
    "__version__",
    "compile_plan",
    "load_workflow",
    "step",
    "validate",
]


def test_all_is_pinned() -> None:
    assert orchestrator.__all__ == PUBLIC_API
    assert sorted(PUBLIC_API) == PUBLIC_API


@pytest.mark.parametrize("name", PUBLIC_API)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from orchestrator import {name}", namespace)
    assert namespace[name] is getattr(orchestrator, name)


def test_errors_share_one_root() -> None:
    for name in PUBLIC_API:
        value = getattr(orchestrator, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, orchestrator.OrchestratorError), name


def test_version_matches_the_package() -> None:
    from importlib.metadata import version

    assert orchestrator.__version__ == version("celery-orchestrator")


class Forbidden(AssertionError):
    pass


@pytest.fixture
def fresh_import(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget every orchestrator/workers module, forbid I/O, restore the originals after."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("orchestrator", "workers")}

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise Forbidden(f"I/O at import time: {args!r}")

    for key in saved:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    try:
        yield
    finally:
        for key in [k for k in sys.modules if k.split(".")[0] in ("orchestrator", "workers")]:
            del sys.modules[key]
        sys.modules.update(saved)


def test_importing_creates_no_app_and_connects_nowhere(fresh_import: None) -> None:
    from celery import _state

    before = list(_state._apps)
    pkg = importlib.import_module("orchestrator")
    app_module = importlib.import_module("workers.app")
    assert pkg is not orchestrator, "the import really ran again"
    assert not app_module._default, "no default Celery app is built at import"
    assert "app" not in vars(app_module)
    assert "celery" not in vars(app_module)
    assert [a for a in _state._apps if a not in before] == []


def test_workers_app_default_is_lazy() -> None:
    import workers.app

    # None or an empty holder: the default app is only built on first access.
    assert not workers.app._default


HEAVY = ["celery", "kombu", "redis", "redis.asyncio", "orchestrator.compiler", "orchestrator.graph"]
#: The HTTP API's stack: only `orch serve`, `orch dev` and `orch demo` load it.
SERVER = {"fastapi", "starlette", "uvicorn", "orchestrator.api.app"}


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_package_loads_nothing_heavy() -> None:
    """``import orchestrator`` is cheap: names load on first use (docs/BENCHMARKS.md)."""
    loaded = modules_after("import orchestrator")
    assert not loaded & {*HEAVY, *SERVER, "orchestrator.spec", "orchestrator.client", "pydantic"}
    later = modules_after("import orchestrator\norchestrator.Workflow")
    assert "orchestrator.spec" in later, "a name still imports its module when used"


RUN_ORCH = "from orchestrator.cli import main\ntry:\n    main({args})\nexcept SystemExit:\n    pass"


def test_orch_help_and_status_load_only_what_they_need() -> None:
    helped = modules_after(RUN_ORCH.format(args="['--help']"))
    assert not helped & {*HEAVY, *SERVER, "orchestrator.client", "orchestrator.spec", "rich.table"}
    assert "orchestrator.cli._run" in helped


def test_each_quick_command_is_registered_by_the_module_named_for_it() -> None:
    """cli/_lean.QUICK is kept true: loading a quick command's module alone registers it,
    beside others (a lone command would replace the group), and no other module does."""
    from orchestrator.cli._lean import COMMAND_MODULES, QUICK

    probe = (
        "import importlib, json\nfrom orchestrator.cli._app import app\n"
        "importlib.import_module('orchestrator.cli.{m}')\n"
        "print(json.dumps([c.name or c.callback.__name__ for c in app.registered_commands]))"
    )
    found = {}
    for module in COMMAND_MODULES:
        out = subprocess.run(
            [sys.executable, "-c", probe.format(m=module)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        found[module] = set(json.loads(out.stdout))
    for command, module in QUICK.items():
        assert command in found[module] and len(found[module]) > 1
        assert [m for m, names in found.items() if command in names] == [module]


def test_a_lean_redis_import_leaves_the_sdk_importable_and_other_commands_alone() -> None:
    """Where a read-only command needs redis-py (a rediss:// URL, which LeanRedis does not
    serve), the SDK is kept out of redis-py's import only, and only for that command."""
    lean = (
        "import os\nos.environ['ORCH_REDIS_URL'] = {url!r}\n"
        "from orchestrator.cli._lean import import_redis_lean\nimport_redis_lean({args})\n"
    )
    tls = "rediss://localhost:6380/0"
    after = modules_after(
        lean.format(url=tls, args="['status', 'x']") + "import opentelemetry.sdk.metrics"
    )
    assert {"redis", "opentelemetry.sdk.metrics"} <= after, "imported later, the SDK is there"
    skipped = modules_after(lean.format(url=tls, args="['runs', '--json']"))
    assert "redis" in skipped and not skipped & set(OTEL_METRICS)
    api = modules_after(lean.format(url=tls, args="['runs']") + "import opentelemetry.metrics")
    assert "opentelemetry.metrics" in api, "imported later, the API is there too"
    untouched = modules_after(lean.format(url=tls, args="['worker', '-Q', 'x']") + "import redis")
    assert "opentelemetry.sdk.metrics" in untouched, "a worker's redis-py is imported as usual"
    plain = modules_after(lean.format(url="redis://localhost:6379/0", args="['status', 'x']"))
    assert "redis" not in plain, "LeanRedis serves a plain URL: redis-py is not imported"


@pytest.mark.integration
def test_orch_status_and_runs_read_redis_without_the_compiler(client: Any, wf_name: str) -> None:
    """They read the run hash: no engine (scripts), compiler, spec models, Celery or YAML."""
    from orchestrator import Flow

    run = client.submit(Flow(wf_name, 1, input={}).step("a", "m:f", queue="nobody").build(), {})
    for args in (["status", run.id, "--json"], ["runs", "--json"], ["status", run.id]):
        code = f"import os\nos.environ['ORCH_REDIS_URL'] = {client.url!r}\n"
        loaded = modules_after(code + RUN_ORCH.format(args=args))
        assert {"orchestrator.client", "orchestrator.leanredis"} <= loaded, "the command ran"
        assert not loaded & {"redis", "asyncio", "ssl"}, "read over LeanRedis, not redis-py"
        assert not loaded & {"celery", "kombu", "orchestrator.compiler"}
        assert not loaded & {"orchestrator.store.engine", "orchestrator.store.scripts"}
        assert not loaded & {"orchestrator.spec", "orchestrator.graph", "yaml"}
        assert not loaded & SERVER, "no command but serve/dev/demo loads the HTTP stack"
        assert "pydantic_settings" not in loaded, "ORCH_REDIS_URL alone needs no checking"
        assert "pydantic" not in loaded, "typer 0.29 would load it for every option (pyproject)"
        assert not loaded & set(OTEL_METRICS), "no OpenTelemetry either (cli/_lean.py)"
        assert "orchestrator.cli._spec" not in loaded, "only the quick command's own module"
        if "--json" in args:
            assert "rich.console" not in loaded, "JSON output needs no Rich"
