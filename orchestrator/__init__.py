"""A workflow orchestrator for multi-step AI pipelines on Celery + Redis.

The public API is what ``__all__`` lists, plus the event types of
``orchestrator.hooks`` that ``Hooks`` methods receive; everything else is
private and may change. A test pins this list.

Names are imported on first use (PEP 562), so ``import orchestrator`` and the
``orch`` commands that need little (``orch --help``, ``orch status``) do not
pay for Redis's client, the compiler or the spec models up front.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.client import Client, Run
    from orchestrator.compiler import Plan, compile_plan
    from orchestrator.dsl import Flow
    from orchestrator.errors import (
        AdmissionRefusedError,
        HandoffError,
        NonRetryableError,
        NotFoundError,
        OrchestratorError,
        PayloadTooLargeError,
        ReadOnlyClientError,
        RedisOutOfMemoryError,
        RedisPolicyError,
        RedisUnavailableError,
        RunFailedError,
        RunLostError,
        RunTimeoutError,
        SpecError,
        StepCancelled,
        TaskRefusedError,
        WorkflowConflictError,
    )
    from orchestrator.graph import validate
    from orchestrator.hooks import Hooks
    from orchestrator.loader import load_workflow
    from orchestrator.settings import Settings
    from orchestrator.spec import Dependency, RetryPolicy, StepSpec, Workflow
    from orchestrator.states import RunState, StepState
    from orchestrator.steps import StepContext, step

__version__ = "0.1.0"

#: Where each public name lives; ``__getattr__`` imports it from there on first use.
_HOMES = {
    "Client": "client",
    "Run": "client",
    "Plan": "compiler",
    "compile_plan": "compiler",
    "Flow": "dsl",
    "AdmissionRefusedError": "errors",
    "HandoffError": "errors",
    "NonRetryableError": "errors",
    "NotFoundError": "errors",
    "OrchestratorError": "errors",
    "PayloadTooLargeError": "errors",
    "RedisOutOfMemoryError": "errors",
    "ReadOnlyClientError": "errors",
    "RedisPolicyError": "errors",
    "RedisUnavailableError": "errors",
    "RunFailedError": "errors",
    "RunLostError": "errors",
    "RunTimeoutError": "errors",
    "SpecError": "errors",
    "StepCancelled": "errors",
    "TaskRefusedError": "errors",
    "WorkflowConflictError": "errors",
    "validate": "graph",
    "Hooks": "hooks",
    "load_workflow": "loader",
    "Settings": "settings",
    "Dependency": "spec",
    "RetryPolicy": "spec",
    "StepSpec": "spec",
    "Workflow": "spec",
    "RunState": "states",
    "StepState": "states",
    "StepContext": "steps",
    "step": "steps",
}

__all__ = [
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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"orchestrator.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
