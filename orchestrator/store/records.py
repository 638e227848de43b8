"""Plan records: what the scripts know about each step, built once per version.

A pure function of the compiled plan. The records are stored in the plan hash
at registration (``K.plan(ref)``) and passed back to the scripts by callers
that hold them, so a script seldom reads the plan hash. Their keys are the
readable names of ``fields.PLAN_RECORD``.

A step's Celery message templates are stored beside its record
(``fields.PLAN_FIELDS``), not in it. A template is most of a record's bytes,
and a script decodes every record it is handed on every call, while only a
step that gets a message of its own (a root, a retry, a lane's spare work)
needs its template: the script reads that one field when it does.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.compiler import Plan, StepPlan
from orchestrator.messages import queue_list_key, step_template
from orchestrator.store.wire import MESSAGE, META, UNDO_MESSAGE


def meta(plan: Plan) -> dict[str, Any]:
    """The plan-wide record (``META``): orders, roots, finals and lookup lists."""
    return {
        "order": list(plan.order),
        "roots": list(plan.roots),
        "finals": list(plan.finals),
        "hash": plan.content_hash,
        "mapped_over": sorted(n for n, sp in plan.steps.items() if sp.mapped_over),
        "maps": sorted(n for n, sp in plan.steps.items() if sp.map_source is not None),
        "edges": [[up, name] for name in plan.order for up in plan.steps[name].upstreams],
        "waits": _waits(plan),
        "compensable": [n for n in plan.order if _compensable(plan.steps[n])],
        "children": [n for n in plan.order if plan.steps[n].child is not None],
        "lists": sorted({queue_list_key(sp.queue) for sp in plan.steps.values()}),
        **_limits(plan),
    }


def _compensable(sp: StepPlan) -> bool:
    """A step with a compensation, or a child workflow step: its child is undone as a whole."""
    return sp.compensate is not None or sp.child is not None


def _limits(plan: Plan) -> dict[str, Any]:
    """Admission and concurrency limits (submit.lua), present only when declared (Lua reads
    JSON null as true)."""
    limits = {
        "max_queued": plan.max_queued,
        "key_max_queued": plan.key_max_queued,
        "concurrency": plan.concurrency,
    }
    return {k: v for k, v in limits.items() if v is not None}


def _waits(plan: Plan) -> dict[str, list[str]]:
    """Signal name -> the steps that wait for it."""
    waits: dict[str, list[str]] = {}
    for name in plan.order:
        signal = plan.steps[name].wait_for
        if signal is not None:
            waits.setdefault(signal, []).append(name)
    return waits


def step_record(plan: Plan, name: str) -> dict[str, Any]:
    sp = plan.steps[name]
    record: dict[str, Any] = {
        "upstreams": list(sp.upstreams),
        "downstreams": list(sp.downstreams),
        "queue": queue_list_key(sp.queue),
        "mapped_over": sp.mapped_over,
    }
    optional: dict[str, Any] = {
        "map": sp.map_source,
        "signal": sp.wait_for,
        "wait_timeout": sp.wait_timeout if sp.wait_for is not None else None,
        "on_timeout": sp.on_timeout if sp.wait_for is not None else None,
        "dependency": sp.dependency,
        "fallback": True if sp.fallback is not None else None,
        "gated": True if sp.when is not None else None,
        "compensable": True if _compensable(sp) else None,
        "child": sp.child,
        "max_depth": sp.max_depth,
        "trigger": sp.trigger if sp.trigger != "all_succeeded" else None,
        "time_limited": True if sp.timeout is not None else None,
        "sleep": sp.sleep,
        "until": sp.until,
        "priority": sp.priority,
    }
    record.update({k: v for k, v in optional.items() if v is not None})
    return record


def plan_fields(plan: Plan) -> list[str]:
    """The plan hash as field/value pairs: the meta, then each step's record and templates."""
    fields = [META, json.dumps(meta(plan))]
    for name, sp in plan.steps.items():
        fields += [name, json.dumps(step_record(plan, name), separators=(",", ":"))]
        fields += [name + MESSAGE, step_template(plan, sp)]
        if _compensable(sp):
            fields += [name + UNDO_MESSAGE, step_template(plan, sp, compensation=True)]
    return fields
