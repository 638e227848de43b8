"""The compiler: a pure function from a validated workflow to a dispatch plan.

Celery's canvas nests chords to express joins, and nesting is where it breaks
(celery#6220, #1401, #6792, #2573, #3709). The plan therefore keeps Celery's
vocabulary for what each piece *is* — chains for sequences, groups for
fan-outs, joins for fan-ins — but every join is an atomic counter in Redis
rather than a nested chord, so any DAG runs with exactly its own dependencies
and each step starts the moment its last upstream finishes.

Nothing here touches Redis or imports step code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.graph import downstream_map, final_steps, topological_order
from orchestrator.spec import Workflow

STEP_TASK = "orch.step"


@dataclass(frozen=True)
class StepPlan:
    """What dispatch needs to know about one step, fixed when the plan compiles."""

    name: str
    task: str | None
    queue: str
    upstreams: tuple[str, ...]
    downstreams: tuple[str, ...]
    map_source: str | None
    mapped_over: bool
    final: bool
    trigger: str
    wait_for: str | None
    timeout: float | None = None
    fallback: str | None = None
    when: str | None = None
    compensate: str | None = None
    wait_timeout: float | None = None
    on_timeout: str = "fail"
    dependency: dict[str, Any] | None = None
    sleep: float | None = None
    until: str | None = None
    #: The child workflow (name:version) a `workflow:` step starts, and its depth limit.
    child: str | None = None
    max_depth: int | None = None
    #: The step's own priority, overriding its run's (None: the run's).
    priority: int | None = None

    def task_id(self, run_id: str, index: int | None = None) -> str:
        base = f"{run_id}-{self.name}"
        return base if index is None else f"{base}-{index}"


@dataclass(frozen=True)
class Segment:
    """A maximal chain of steps, and how it begins and ends."""

    steps: tuple[str, ...]
    joins: tuple[str, ...]
    fans_out_to: tuple[str, ...]

    @property
    def kind(self) -> Literal["chain", "join"]:
        return "join" if len(self.joins) > 1 else "chain"


@dataclass(frozen=True)
class Plan:
    workflow: str
    version: int
    content_hash: str
    order: tuple[str, ...]
    steps: dict[str, StepPlan]
    roots: tuple[str, ...]
    finals: tuple[str, ...]
    segments: tuple[Segment, ...] = field(default=())
    #: Admission limits: runs waiting to start, per workflow and per fairness key.
    max_queued: int | None = None
    key_max_queued: int | None = None
    #: Per-key run limit: {"max_runs": N, "strategy": ...}, or None.
    concurrency: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.workflow}:{self.version}"


def compile_plan(
    wf: Workflow, *, default_queue: str = "orch", children: Mapping[str, str] | None = None
) -> Plan:
    """Compile a validated workflow; the same input always gives the same plan.

    ``children`` gives the version each child workflow step resolved to at
    registration (step -> name:version); a step that names its version, or
    names its own workflow, needs none.
    """
    order = topological_order(wf)
    down = downstream_map(wf)
    finals = final_steps(wf)
    mapped = {spec.map for spec in wf.steps.values() if spec.map is not None}
    steps = {
        name: StepPlan(
            name=name,
            task=spec.task,
            queue=spec.queue or default_queue,
            upstreams=tuple(spec.upstreams),
            downstreams=tuple(down[name]),
            map_source=spec.map,
            mapped_over=name in mapped,
            final=name in finals,
            trigger=spec.trigger,
            wait_for=spec.wait_for,
            timeout=wf.policy_for(name).timeout,
            fallback=spec.fallback,
            when=spec.when,
            compensate=spec.compensate if spec.compensate != "none" else None,
            wait_timeout=spec.timeout,
            on_timeout=spec.on_timeout,
            dependency=_dependency(wf, spec.dependency),
            sleep=spec.sleep,
            until=spec.until,
            child=_child_ref(wf, spec.workflow, (children or {}).get(name)),
            max_depth=spec.max_depth,
            priority=spec.priority,
        )
        for name, spec in wf.steps.items()
    }
    return Plan(
        workflow=wf.name,
        version=wf.version,
        content_hash=wf.content_hash,
        order=tuple(order),
        steps=steps,
        roots=tuple(n for n in order if not steps[n].upstreams),
        finals=tuple(finals),
        segments=tuple(_segments(order, steps)),
        max_queued=wf.max_queued,
        key_max_queued=wf.fairness.max_queued if wf.fairness is not None else None,
        concurrency=(
            {"max_runs": wf.concurrency.max_runs, "strategy": wf.concurrency.strategy}
            if wf.concurrency is not None
            else None
        ),
    )


def _child_ref(wf: Workflow, written: str | None, resolved: str | None) -> str | None:
    """The name:version a child workflow step starts (its bare name when unresolved)."""
    if written is None:
        return None
    if resolved is not None:
        return resolved
    if ":" in written:
        return written
    return wf.ref if written == wf.name else written


def _dependency(wf: Workflow, name: str | None) -> dict[str, Any] | None:
    """The limits the scripts enforce for a step's dependency (fields.DEPENDENCY_RECORD)."""
    if name is None:
        return None
    dep = wf.dependencies[name]
    record: dict[str, Any] = {"name": name}
    if dep.rate is not None:
        record |= {"rate": dep.rate, "burst": dep.burst or max(1.0, dep.rate)}
    if dep.concurrency is not None:
        record["concurrency"] = dep.concurrency
    if dep.retry_budget is not None:
        record |= {
            "budget_ratio": dep.retry_budget.ratio,
            "budget_min_per_s": dep.retry_budget.min_per_s,
        }
    if dep.breaker is not None:
        b = dep.breaker
        record |= {"failure_rate": b.failure_rate, "min_calls": b.min_calls, "open_for": b.open_for}
    return record


def _segments(order: list[str], steps: dict[str, StepPlan]) -> list[Segment]:
    """Cut the graph into maximal chains: a chain continues while it is 1-in/1-out."""

    def continues(a: str, b: str) -> bool:
        return len(steps[a].downstreams) == 1 and len(steps[b].upstreams) == 1

    out: list[Segment] = []
    for name in order:
        ups = steps[name].upstreams
        if len(ups) == 1 and continues(ups[0], name):
            continue
        chain = [name]
        while len(steps[chain[-1]].downstreams) == 1 and continues(
            chain[-1], steps[chain[-1]].downstreams[0]
        ):
            chain.append(steps[chain[-1]].downstreams[0])
        tail = steps[chain[-1]]
        fan = tail.downstreams if len(tail.downstreams) > 1 else ()
        out.append(Segment(tuple(chain), tuple(ups), fan))
    return out
