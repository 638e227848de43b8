"""Plan records: what the scripts know about each step, built once per version.

A pure function of the compiled plan. The records are stored in the plan hash
at registration (``K.plan(ref)``) and passed back to the scripts by callers
that hold them, so a script seldom reads the plan hash. Their keys are the
readable names of ``fields.PLAN_RECORD``.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.compiler import Plan
from orchestrator.messages import queue_list_key, step_template


def meta(plan: Plan) -> dict[str, Any]:
    """The plan-wide record ("__meta__"): orders, roots, finals and lookup lists."""
    return {
        "order": list(plan.order),
        "roots": list(plan.roots),
        "finals": list(plan.finals),
        "hash": plan.content_hash,
        "mapped_over": sorted(n for n, sp in plan.steps.items() if sp.mapped_over),
        "maps": sorted(n for n, sp in plan.steps.items() if sp.map_source is not None),
        "edges": [[up, name] for name in plan.order for up in plan.steps[name].upstreams],
        "waits": _waits(plan),
        "compensable": [n for n in plan.order if plan.steps[n].compensate is not None],
        "lists": sorted({queue_list_key(sp.queue) for sp in plan.steps.values()}),
        **_limits(plan),
    }


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
        "message": step_template(plan, sp),
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
        "compensable": True if sp.compensate is not None else None,
        "undo_message": step_template(plan, sp, compensation=True) if sp.compensate else None,
        "trigger": sp.trigger if sp.trigger != "all_succeeded" else None,
        "time_limited": True if sp.timeout is not None else None,
        "priority": sp.priority,
    }
    record.update({k: v for k, v in optional.items() if v is not None})
    return record


def plan_fields(plan: Plan) -> list[str]:
    """The plan hash as field/value pairs: the meta, then one record per step."""
    fields = ["__meta__", json.dumps(meta(plan))]
    for name in plan.steps:
        fields += [name, json.dumps(step_record(plan, name), separators=(",", ":"))]
    return fields
