"""Validation of a workflow's graph: everything that makes a spec runnable.

Structural checks are pure (no imports, no I/O) so they can run anywhere,
including in a web app that submits work but does not ship step code. Import
checks are opt-in: the CLI's ``validate --import`` and worker start-up.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from orchestrator.children import check_cycles
from orchestrator.errors import SpecError, TaskRefusedError
from orchestrator.inputs import check_declaration
from orchestrator.spec import StepSpec, Workflow
from orchestrator.steps import CONTEXT_PARAM, StepFunction, import_task


def _where(step: str, field: str) -> str:
    return f"step {step!r}, field {field!r}"


def validate(
    wf: Workflow, *, import_tasks: bool = False, visibility_timeout: float | None = None
) -> Workflow:
    """Return ``wf`` if it is runnable; raise a one-line ``SpecError`` otherwise."""
    if wf.input is not None:
        check_declaration(wf.input)
    for name, spec in wf.steps.items():
        _check_references(wf, name, spec)
        _check_combinations(name, spec)
        _check_sleep(name, spec)
        _check_backoff(wf, name, visibility_timeout)
    topological_order(wf)
    check_cycles({wf.name: wf})
    if import_tasks:
        check_imports(wf)
    return wf


def check_imports(wf: Workflow, steps: Iterable[str] | None = None) -> None:
    """Import the tasks of ``steps`` (default all) and check their parameters can be filled."""
    for name in wf.steps if steps is None else steps:
        _check_imports(wf, name, wf.steps[name])


def _check_references(wf: Workflow, name: str, spec: StepSpec) -> None:
    if name == CONTEXT_PARAM:
        raise SpecError(
            f"{CONTEXT_PARAM!r} is reserved for the step context", where=f"step {name!r}"
        )
    seen: set[str] = set()
    for up in spec.after:
        if up == name:
            raise SpecError("a step cannot come after itself", where=_where(name, "after"))
        if up not in wf.steps:
            raise SpecError(f"unknown step {up!r}", where=_where(name, "after"))
        if up in seen:
            raise SpecError(f"{up!r} is listed twice", where=_where(name, "after"))
        seen.add(up)
    if spec.map is not None and spec.map not in wf.steps:
        raise SpecError(f"unknown step {spec.map!r}", where=_where(name, "map"))
    if spec.map == name:
        raise SpecError("a step cannot map over itself", where=_where(name, "map"))
    if spec.dependency is not None and spec.dependency not in wf.dependencies:
        raise SpecError(f"unknown dependency {spec.dependency!r}", where=_where(name, "dependency"))


def _check_combinations(name: str, spec: StepSpec) -> None:
    """Fields that only make sense together, or never together."""
    if spec.wait_for is None and (spec.timeout is not None or spec.on_timeout != "fail"):
        field = "timeout" if spec.timeout is not None else "on_timeout"
        raise SpecError(
            "only a wait_for step waits; a task's time limit is retry.timeout",
            where=_where(name, field),
        )
    if spec.wait_for is not None and spec.cancel_grace is not None:
        raise SpecError(
            "a wait_for step runs nothing that could be interrupted",
            where=_where(name, "cancel_grace"),
        )
    if spec.effects and spec.compensate is None and spec.workflow is None:
        raise SpecError(
            "a step with effects needs a compensation; say `compensate: none` if it needs none",
            where=_where(name, "compensate"),
        )
    if spec.when is not None and spec.map is not None:
        raise SpecError("a map step cannot have a `when` predicate", where=_where(name, "when"))
    _check_child(name, spec)


def _check_child(name: str, spec: StepSpec) -> None:
    """A child workflow step runs no code of its own: its child's saga is its compensation."""
    if spec.workflow is None:
        if spec.max_depth is not None:
            raise SpecError(
                "only a child workflow step (workflow:) has a max_depth",
                where=_where(name, "max_depth"),
            )
        return
    for field in ("fallback", "dependency", "compensate", "cancel_grace"):
        if getattr(spec, field) is not None:
            raise SpecError(
                f"a child workflow step has no {field}: the child run's own steps and saga "
                "do that work",
                where=_where(name, field),
            )


#: Fields that mean nothing on a sleep step: it runs no code and calls nothing.
_NOT_ON_SLEEP = ("map", "queue", "dependency", "fallback", "when", "compensate", "retry")


def _check_sleep(name: str, spec: StepSpec) -> None:
    """A sleep waits in Redis and runs no code; ``until`` reads an upstream's output."""
    if not spec.sleeps:
        return
    for field in _NOT_ON_SLEEP:
        if getattr(spec, field) is not None:
            raise SpecError(
                "a sleep step runs no code, so it takes no " + repr(field),
                where=_where(name, field),
            )
    if spec.effects or spec.cancel_grace is not None:
        field = "effects" if spec.effects else "cancel_grace"
        raise SpecError(
            "a sleep step runs no code, so it takes no " + repr(field), where=_where(name, field)
        )
    if spec.until is not None:
        source = spec.until.split(".", 1)[0]
        if source not in spec.after:
            raise SpecError(
                f"{spec.until!r} reads step {source!r}, which is not in 'after'",
                where=_where(name, "until"),
            )


def _check_backoff(wf: Workflow, name: str, visibility_timeout: float | None) -> None:
    policy = wf.policy_for(name)
    if visibility_timeout is not None and policy.max >= visibility_timeout:
        inherited = "" if wf.steps[name].retry else " (the workflow's default retry)"
        raise SpecError(
            f"max backoff {policy.max:g}s{inherited} is not below the broker visibility "
            f"timeout {visibility_timeout:g}s",
            where=_where(name, "retry.max"),
        )


def topological_order(wf: Workflow) -> list[str]:
    """Steps in dependency order, ties broken by name so the order is stable."""
    indegree = {name: len(spec.upstreams) for name, spec in wf.steps.items()}
    down = downstream_map(wf)
    ready = [name for name, n in indegree.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for d in down[name]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, d)
    if len(order) != len(wf.steps):
        cycle = find_cycle(wf)
        field = _cycle_field(wf, cycle)
        raise SpecError("cycle " + " → ".join(cycle), where=_where(cycle[0], field))
    return order


def downstream_map(wf: Workflow) -> dict[str, list[str]]:
    down: dict[str, list[str]] = {name: [] for name in wf.steps}
    for name in sorted(wf.steps):
        for up in wf.steps[name].upstreams:
            down[up].append(name)
    return down


def find_cycle(wf: Workflow) -> list[str]:
    """One cycle as a closed path in run order (``a → b`` means a runs before b), or [].

    Iterative, so a cycle through thousands of steps is reported, not a RecursionError.
    """
    colour: dict[str, int] = {}
    for start in sorted(wf.steps):
        if start in colour:
            continue
        colour[start] = 1
        path = [start]
        pending = [iter(wf.steps[start].upstreams)]
        while pending:
            up = next(pending[-1], None)
            if up is None:
                colour[path.pop()] = 2
                pending.pop()
            elif colour.get(up) == 1:
                loop = path[path.index(up) :]
                return [*reversed(loop), loop[-1]]
            elif up not in colour:
                colour[up] = 1
                path.append(up)
                pending.append(iter(wf.steps[up].upstreams))
    return []


def _cycle_field(wf: Workflow, cycle: list[str]) -> str:
    """The field of ``cycle[0]`` that names its upstream in the cycle."""
    spec, upstream = wf.steps[cycle[0]], cycle[-2]
    return "map" if spec.map == upstream and upstream not in spec.after else "after"


def final_steps(wf: Workflow) -> list[str]:
    """Steps nothing depends on: their outputs make the run's result."""
    down = downstream_map(wf)
    return sorted(name for name, targets in down.items() if not targets)


def code_fields(spec: StepSpec) -> list[tuple[str, str]]:
    """(field, module:function) of every piece of code a step names."""
    compensate = spec.compensate if spec.compensate != "none" else None
    fields = (
        ("task", spec.task),
        ("fallback", spec.fallback),
        ("when", spec.when),
        ("compensate", compensate),
    )
    return [(field, path) for field, path in fields if path is not None]


def _check_imports(wf: Workflow, name: str, spec: StepSpec) -> None:
    for field, path in code_fields(spec):
        import_task(path, where=_where(name, field))
    if spec.task is not None:
        fn = StepFunction.wrap(import_task(spec.task))
        _check_fill(wf, name, spec, fn.params_required())


def check_steps(wf: Workflow, modules: tuple[str, ...]) -> list[str]:
    """Refuse, at submit, code a worker would refuse, as far as this process can tell.

    A path outside ``modules`` or one that imports to something not marked
    ``@step`` raises ``TaskRefusedError``. A path this process cannot import
    (its code ships only with the workers) is returned, not refused: the
    worker refuses it, if it must, when the step runs.
    """
    unchecked: list[str] = []
    for name, spec in wf.steps.items():
        for field, path in code_fields(spec):
            try:
                import_task(path, where=_where(name, field), modules=modules)
            except TaskRefusedError:
                raise
            except SpecError:
                unchecked.append(path)
    return unchecked


def _check_fill(wf: Workflow, name: str, spec: StepSpec, required: Iterable[str]) -> None:
    upstreams = set(spec.upstreams)
    for param in required:
        if param in upstreams:
            continue
        if param in wf.steps:
            raise SpecError(
                f"parameter {param!r} names step {param!r}, which is not in 'after'",
                where=_where(name, "task"),
            )
        if wf.input is not None and param not in wf.input:
            raise SpecError(
                f"parameter {param!r} is filled by no upstream step and no input field",
                where=_where(name, "task"),
            )
