"""The Python DSL: build the same ``Workflow`` model a YAML file would.

Steps may be given as callables; the builder records them by import path
(``module:function``) because that is what workers resolve, and it refuses a
callable that could not be imported by name (a lambda, a nested function).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.graph import validate
from orchestrator.loader import workflow_from_data
from orchestrator.spec import Workflow


def task_path(task: str | Callable[..., Any], *, where: str) -> str:
    if isinstance(task, str):
        return task
    qualname = getattr(task, "__qualname__", "")
    if "<" in qualname or not qualname:
        raise SpecError(
            f"{task!r} cannot be imported by name; use a module-level function", where=where
        )
    return f"{task.__module__}:{qualname}"


class Flow:
    """Builder: ``Flow("triage", 1).step("fetch", fetch).step("chunk", chunk, after=["fetch"])``."""

    def __init__(self, name: str, version: int, **options: Any) -> None:
        self._data: dict[str, Any] = {"name": name, "version": version, **options, "steps": {}}

    def step(self, name: str, task: str | Callable[..., Any] | None = None, **fields: Any) -> Flow:
        where = f"step {name!r}"
        if name in self._data["steps"]:
            raise SpecError("duplicate step name", where=where)
        spec = dict(fields)
        if task is not None:
            spec["task"] = task_path(task, where=where)
        for key in ("fallback", "when", "compensate"):
            if callable(spec.get(key)):
                spec[key] = task_path(spec[key], where=f"{where}, field {key!r}")
        self._data["steps"][name] = spec
        return self

    def build(self, *, import_tasks: bool = False) -> Workflow:
        wf = workflow_from_data(self._data, source=f"workflow {self._data['name']!r}")
        return validate(wf, import_tasks=import_tasks)
