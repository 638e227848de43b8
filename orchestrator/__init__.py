"""A workflow orchestrator for multi-step AI pipelines on Celery + Redis.

The public API is what ``__all__`` lists, plus the event types of
``orchestrator.hooks`` that ``Hooks`` methods receive; everything else is
private and may change. A test pins this list.
"""

from orchestrator.client import Client, Run
from orchestrator.compiler import Plan, compile_plan
from orchestrator.dsl import Flow
from orchestrator.errors import (
    HandoffError,
    NonRetryableError,
    NotFoundError,
    OrchestratorError,
    PayloadTooLargeError,
    RedisPolicyError,
    RedisUnavailableError,
    RunFailedError,
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

__all__ = [
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
