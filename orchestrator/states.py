"""The run and step state machines: the one place their transitions are defined.

The Lua scripts that move state in Redis receive these tables (rendered by
``lua_table``) rather than keeping a copy, so a transition allowed here is
exactly the set allowed at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    COMPENSATING = "COMPENSATING"
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"


class StepState(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    WAITING = "WAITING"
    COMPENSATING = "COMPENSATING"
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"


R, S = RunState, StepState

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    R.PENDING: frozenset({R.RUNNING, R.CANCELLING}),
    R.RUNNING: frozenset({R.SUCCEEDED, R.FAILED, R.COMPENSATING, R.CANCELLING}),
    # COMPENSATING -> FAILED: the steps that could be undone never completed after all
    # (they were still running when the run failed, and failed too): nothing was undone.
    R.COMPENSATING: frozenset({R.COMPENSATED, R.COMPENSATION_FAILED, R.CANCELLING, R.FAILED}),
    R.CANCELLING: frozenset({R.CANCELLED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
    R.COMPENSATED: frozenset(),
    R.COMPENSATION_FAILED: frozenset(),
    R.CANCELLED: frozenset(),
}

STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    S.PENDING: frozenset({S.QUEUED, S.SKIPPED, S.WAITING}),
    S.QUEUED: frozenset({S.RUNNING}),
    # RUNNING -> WAITING: a child workflow step started its child run and waits for it.
    S.RUNNING: frozenset({S.SUCCEEDED, S.RETRYING, S.FAILED, S.WAITING}),
    S.RETRYING: frozenset({S.QUEUED}),
    # WAITING -> SKIPPED serves `on_timeout: skip` (a step nobody signalled in time).
    # WAITING -> RUNNING: its child run ended; an attempt records what that means.
    S.WAITING: frozenset({S.SUCCEEDED, S.FAILED, S.SKIPPED, S.RUNNING}),
    S.SUCCEEDED: frozenset({S.COMPENSATING}),
    S.COMPENSATING: frozenset({S.COMPENSATED, S.COMPENSATION_FAILED}),
    S.FAILED: frozenset(),
    S.SKIPPED: frozenset(),
    S.COMPENSATED: frozenset(),
    S.COMPENSATION_FAILED: frozenset(),
}

#: Moves that only an operator's command makes (``orch compensate RUN``): they
#: reopen a run whose compensation failed for good so that it can be tried
#: again. They sit apart from the tables above, so "terminal" keeps its meaning
#: for everything the engine does on its own, and every reopening is an event.
RUN_REOPEN: dict[RunState, frozenset[RunState]] = {
    R.COMPENSATION_FAILED: frozenset({R.COMPENSATING}),
    R.CANCELLED: frozenset({R.CANCELLING}),  # a cancelled run whose compensation failed
    # A child run that succeeded is undone as a whole when its parent compensates.
    R.SUCCEEDED: frozenset({R.COMPENSATING}),
}
STEP_REOPEN: dict[StepState, frozenset[StepState]] = {
    S.COMPENSATION_FAILED: frozenset({S.COMPENSATING}),
}

RUN_TERMINAL = frozenset(s for s, nxt in RUN_TRANSITIONS.items() if not nxt)
STEP_TERMINAL = frozenset(s for s, nxt in STEP_TRANSITIONS.items() if not nxt)


def run_transition_allowed(src: RunState, dst: RunState) -> bool:
    return dst in RUN_TRANSITIONS[src]


def step_transition_allowed(src: StepState, dst: StepState) -> bool:
    return dst in STEP_TRANSITIONS[src]


def lua_table() -> str:
    """Render the tables as two Lua strings of ``|kind:FROM>TO|`` entries.

    ``MOVES`` holds the engine's own moves (``run`` and ``step``), ``REOPENS``
    the operator's. Strings, not nested tables: Redis runs a script's whole
    chunk on every call, and a string constant costs nothing to set up, where
    two dozen small tables cost several microseconds per call (run.lua looks
    a move up with a plain ``string.find``).
    """

    def entries(kind: str, table: Mapping[Any, frozenset[Any]]) -> list[str]:
        return [
            f"{kind}:{src.value}>{dst.value}" for src, dsts in table.items() for dst in sorted(dsts)
        ]

    moves = entries("run", RUN_TRANSITIONS) + entries("step", STEP_TRANSITIONS)
    reopens = entries("run", RUN_REOPEN) + entries("step", STEP_REOPEN)
    return f"local MOVES = '|{'|'.join(moves)}|'\nlocal REOPENS = '|{'|'.join(reopens)}|'\n"
