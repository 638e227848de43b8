"""The public API is exactly ``orchestrator.__all__``, and importing it has no side effects."""

from __future__ import annotations

import importlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import orchestrator

PUBLIC_API = [
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
    "RedisPolicyError",
    "RedisUnavailableError",
    "RetryPolicy",
    "Run",
    "RunFailedError",
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
