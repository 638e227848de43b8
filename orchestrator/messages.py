"""Celery task messages in kombu's Redis wire format, as templates for Lua.

Dispatch happens inside the same Lua call that records a step's outcome, so a
successor is queued if and only if its join completed: there is no window in
which a worker can die after recording an outcome but before publishing what
comes next. To do that the script must write the message itself, so the
message is prepared here once per plan, with placeholders the script fills:

    @RUN@  run id        @IDX@  map element index     @TAG@  delivery tag
    @PRI@  kombu priority level (9 - the run's priority)

The envelope follows Celery's task protocol 2 (headers + ``[args, kwargs,
embed]`` body) and kombu's virtual-transport envelope. The body is left
unencoded (no ``body_encoding``), which kombu passes through as is.
"""

from __future__ import annotations

import json

from orchestrator.compiler import STEP_TASK, Plan, StepPlan

RUN, IDX, TAG, PRI = "@RUN@", "@IDX@", "@TAG@", "@PRI@"

#: kombu's Redis transport: the hash of messages handed to a consumer and not yet
#: acknowledged (delivery tag -> message), and when each was handed out (its index).
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"

#: kombu's separator between a queue name and its priority suffix.
PRIORITY_SEP = "\x06\x16"
#: kombu's Redis transport keeps one list per step; a priority joins the step at or below it.
PRIORITY_STEPS = (0, 3, 6, 9)


#: Priorities, as users give them: 0-9, a higher number runs sooner; 0 when none is given.
PRIORITIES = range(10)
#: What workers tell kombu (workers/app.py): one list per level, level 0 (the plain list)
#: polled first. A priority ``p`` goes to level ``9 - p``; dispatch.lua does the same.
KOMBU_PRIORITY_STEPS = list(range(10))


def priority_list(queue: str, priority: int) -> str:
    """The Redis list a step of ``priority`` (0-9, higher sooner) waits in on ``queue``."""
    level = 9 - priority
    return queue if level == 0 else f"{queue}{PRIORITY_SEP}{level}"


def priority_lists(queue: str) -> list[str]:
    """Every list of ``queue``, highest priority first (the order workers poll them)."""
    return [priority_list(queue, p) for p in reversed(PRIORITIES)]


def queue_list_key(queue: str, priority: int = 0) -> str:
    """The Redis list kombu reads for ``queue`` at ``priority`` (0, the plain list, goes first)."""
    step = max(s for s in PRIORITY_STEPS if s <= max(0, priority))
    return queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}"


def time_limits(timeout: float | None) -> list[float | None]:
    """Celery's ``[hard, soft]`` limits for a per-attempt timeout.

    The soft limit raises inside the step, which then fails (and retries) like
    any error; the hard limit, a little later, kills a step that ignores it,
    and the attempt's lease then expires and is counted as a lost attempt.
    """
    if timeout is None:
        return [None, None]
    return [timeout + max(2.0, timeout * 0.2), timeout]


def step_template(
    plan: Plan, step: StepPlan, *, origin: str = "orch", compensation: bool = False
) -> str:
    """The full message for one step of any run, with placeholders.

    A compensation's message is the step's own with element index -1.
    """
    mapped = step.map_source is not None and not compensation
    task_id = (
        f"{RUN}-{step.name}" + (f"-{IDX}" if mapped else "") + ("-undo" if compensation else "")
    )
    index: object = -1 if compensation else (IDX if mapped else None)
    args: list[object] = [RUN, plan.ref, step.name, index]
    body = json.dumps(
        [args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}],
        separators=(",", ":"),
    )
    if mapped:
        body = body.replace(f'"{IDX}"', IDX)
    headers = {
        "lang": "py",
        "task": STEP_TASK,
        "id": task_id,
        "shadow": f"{plan.workflow}.{step.name}" + (".undo" if compensation else ""),
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": time_limits(step.timeout),
        "root_id": RUN,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": True,
    }
    envelope = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": step.queue},
            "priority": PRI,
            "delivery_tag": TAG,
        },
    }
    # kombu restores an unacknowledged message to the list of its "priority" property.
    return json.dumps(envelope, separators=(",", ":")).replace(f'"{PRI}"', PRI)
