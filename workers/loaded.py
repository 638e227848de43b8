"""A workflow version as a worker holds it: its plan, and its step functions.

A worker meets the same few workflow versions over and over, so each is
compiled once and each step function imported on first use, then kept for the
life of the process (``StepRuntime.load`` caches them by ref). Only functions
the plan names as a step's ``task`` or ``fallback`` are ever imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from orchestrator.compiler import Plan
from orchestrator.errors import NonRetryableError
from orchestrator.spec import Workflow
from orchestrator.steps import StepFunction, import_task


@dataclass
class LoadedWorkflow:
    """A workflow version as a worker needs it: compiled once, functions imported once."""

    workflow: Workflow
    plan: Plan
    functions: dict[tuple[str, str], StepFunction] = field(default_factory=dict)

    def function(self, step: str, field_name: str = "task") -> StepFunction:
        """The step's ``task`` (or ``fallback``) function, imported on first use."""
        fn = self.functions.get((step, field_name))
        if fn is None:
            path = getattr(self.workflow.steps[step], field_name)
            if path is None:
                raise NonRetryableError(f"step {step!r} has no {field_name} to run")
            where = f"step {step!r}, field {field_name!r}"
            fn = StepFunction.wrap(import_task(path, where=where))
            self.functions[(step, field_name)] = fn
        return fn

    @cached_property
    def _waits(self) -> dict[str, tuple[str, float | None]]:
        return {
            name: (sp.wait_for, sp.wait_timeout)
            for name, sp in self.plan.steps.items()
            if sp.wait_for is not None
        }

    def waits(self) -> dict[str, tuple[str, float | None]]:
        """Signal and timeout of each wait_for step, for wait events (computed once)."""
        return self._waits
