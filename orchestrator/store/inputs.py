"""What each Lua script is called with: one dataclass per script, in ARGV order.

The field order of each dataclass *is* the script's argument layout. It is
rendered into the Lua (``lua_args``) as a list of names, so a script reads
``A.token`` rather than ``ARGV[7]``, and adding an argument is a one-line
change on each side that cannot fall out of step. Engine scripts (those that
change a run) get a common header first: prefix, run id, TTL, the plan records
the caller holds, and which of this call's decisions the caller wants back
(``observe``, an :class:`Observe`). Plain scripts get the prefix alone before
their own fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

#: The header of every engine script, ARGV[1..5].
ENGINE_HEADER = ("prefix", "run", "ttl", "infos", "observe")
#: The header of every plain script, ARGV[1].
PLAIN_HEADER = ("prefix",)


class Observe(StrEnum):
    """Which decisions an engine call answers with, besides recording them all in the history.

    Every decision costs the worker a parse, and most of a step's are plain
    moves (PENDING to QUEUED to RUNNING to SUCCEEDED) that no hook hears of.
    So a worker whose hooks listen asks for ``EVENTS``: the decisions that
    ``reporting`` can word as an event (a run's end, a retry, a wait begun or
    ended, a breaker's move, a refused retry, a compensation note), plus the
    attempt's times and carried context. The engine tests ask for ``ALL``.
    """

    NOTHING = ""  # no hook listens: no decisions, no times
    EVENTS = "events"  # what hooks can hear of (scripts/lib/run.lua ``tells``)
    ALL = "all"  # every decision, plain moves too


@dataclass(frozen=True, kw_only=True)
class ScriptArgs:
    """Base of every script's arguments; ``script`` names the Lua file."""

    script: ClassVar[str]
    engine: ClassVar[bool] = True
    #: The name of a last field that takes every remaining argument, if any.
    variadic: ClassVar[str | None] = None

    def argv(self) -> list[Any]:
        names = _field_names(type(self))
        if self.variadic is None:  # most scripts: one list comprehension, no test per field
            return [_wire(getattr(self, name)) for name in names]
        out = [_wire(getattr(self, name)) for name in names[:-1]]
        out.extend(getattr(self, names[-1]))
        return out


_NAMES: dict[str, tuple[str, ...]] = {}


def _field_names(cls: type[ScriptArgs]) -> tuple[str, ...]:
    """A script's argument names in ARGV order (looked up once per class: calls are hot)."""
    found = _NAMES.get(cls.script)
    if found is None:
        found = _NAMES[cls.script] = tuple(f.name for f in dataclasses.fields(cls))
    return found


def _wire(value: Any) -> Any:
    """How a value travels in ARGV: flags as '1'/'', absent values as ''."""
    if type(value) is str:  # most values: nothing to test further
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


@dataclass(frozen=True, kw_only=True)
class LaneArgs(ScriptArgs):
    """The runner lane of complete and fail (claiming.lua): '' queue when there is none."""

    lane_queue: str = ""
    lane_token: str = ""
    lane_worker: str = ""
    lane_lease: float = 0.0
    lane_yield: bool = False


@dataclass(frozen=True, kw_only=True)
class SubmitArgs(ScriptArgs):
    script = "submit"
    ref: str
    input: str
    key: str
    context: str = ""
    #: Seconds the run may take (its workflow's ``deadline`` or submit's), or None.
    deadline: float | None = None
    priority: int = 0
    fairness_key: str = ""
    fairness_weight: float = 1.0
    concurrency_key: str = ""


@dataclass(frozen=True, kw_only=True)
class ClaimArgs(ScriptArgs):
    script = "claim"
    step: str
    index: str
    token: str
    worker: str
    lease: float
    gate_open: bool


@dataclass(frozen=True, kw_only=True)
class CompleteArgs(LaneArgs):
    script = "complete"
    variadic = "items"
    step: str
    index: str
    token: str
    output: str
    cap: int
    how: str
    items: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FailArgs(LaneArgs):
    script = "fail"
    step: str
    index: str
    token: str
    error: str
    delay: float | None
    edge: str
    called: bool


@dataclass(frozen=True, kw_only=True)
class SkipArgs(ScriptArgs):
    script = "skip"
    step: str


@dataclass(frozen=True, kw_only=True)
class SignalArgs(ScriptArgs):
    script = "signal"
    name: str
    data: str


@dataclass(frozen=True, kw_only=True)
class TimeoutArgs(ScriptArgs):
    script = "timeout"
    step: str


@dataclass(frozen=True, kw_only=True)
class UndoClaimArgs(ScriptArgs):
    script = "undo_claim"
    step: str
    token: str
    worker: str
    lease: float


@dataclass(frozen=True, kw_only=True)
class UndoDoneArgs(ScriptArgs):
    script = "undo_done"
    step: str
    token: str
    error: str
    delay: float | None


@dataclass(frozen=True, kw_only=True)
class SpawnArgs(ScriptArgs):
    """Start the child run of a claimed child workflow step (spawn.lua)."""

    script = "spawn"
    step: str
    index: str
    token: str
    input: str
    context: str = ""


@dataclass(frozen=True, kw_only=True)
class UndoChildArgs(ScriptArgs):
    """Undo the children of a child workflow step as a whole (undo_child.lua)."""

    script = "undo_child"
    step: str
    token: str


@dataclass(frozen=True, kw_only=True)
class CancelArgs(ScriptArgs):
    script = "cancel"
    reason: str


@dataclass(frozen=True, kw_only=True)
class DeadlineArgs(ScriptArgs):
    """A run's deadline passed: cancel it, saying so (deadline.lua)."""

    script = "deadline"


@dataclass(frozen=True, kw_only=True)
class ResumeArgs(ScriptArgs):
    script = "resume"
    old_run: str


@dataclass(frozen=True, kw_only=True)
class RecompensateArgs(ScriptArgs):
    script = "recompensate"


@dataclass(frozen=True, kw_only=True)
class RegisterArgs(ScriptArgs):
    script = "register"
    engine = False
    variadic = "records"
    name: str
    ref: str
    version: str
    canonical: str
    queues: str
    records: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PromoteArgs(ScriptArgs):
    script = "promote"
    engine = False
    batch: int


@dataclass(frozen=True, kw_only=True)
class SweepArgs(ScriptArgs):
    script = "sweep"
    engine = False
    lease: float
    batch: int


@dataclass(frozen=True, kw_only=True)
class HeartbeatArgs(ScriptArgs):
    script = "heartbeat"
    engine = False
    lease: float
    member: str
    dependency: str
    token: str


@dataclass(frozen=True, kw_only=True)
class DueArgs(ScriptArgs):
    script = "due"
    engine = False
    batch: int


@dataclass(frozen=True, kw_only=True)
class OverdueArgs(ScriptArgs):
    """Take the runs whose deadline passed from K.deadlines (overdue.lua)."""

    script = "overdue"
    engine = False
    batch: int


@dataclass(frozen=True, kw_only=True)
class ScheduleArgs(ScriptArgs):
    """One change of a schedule (schedule.lua): op is add, pause, resume, remove or advance.

    ``at`` is the time of the change (a new next tick, for add and advance);
    ``expected`` the next tick the ticker read; ``tick``/``run`` the latest run it started.
    """

    script = "schedule"
    engine = False
    op: str
    name: str
    at: str = ""
    spec: str = ""
    expected: str = ""
    tick: str = ""
    run: str = ""
    held: str = ""
    skipped: int = 0
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class BeatArgs(ScriptArgs):
    script = "beat"
    engine = False
    variadic = "queues"
    hostname: str
    concurrency: int
    presence: str
    queues: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RollupArgs(ScriptArgs):
    script = "rollup"
    engine = False
    keep_minutes: int
    keep_hours: int


@dataclass(frozen=True, kw_only=True)
class ReconcileArgs(ScriptArgs):
    script = "reconcile"
    engine = False
    variadic = "runs"
    after: float
    unacked: str
    unacked_index: str
    runs: tuple[str, ...] = ()


ALL: tuple[type[ScriptArgs], ...] = (
    SubmitArgs,
    ClaimArgs,
    CompleteArgs,
    FailArgs,
    SkipArgs,
    SignalArgs,
    TimeoutArgs,
    UndoClaimArgs,
    UndoDoneArgs,
    CancelArgs,
    DeadlineArgs,
    ResumeArgs,
    RecompensateArgs,
    RegisterArgs,
    PromoteArgs,
    SweepArgs,
    HeartbeatArgs,
    DueArgs,
    OverdueArgs,
    ScheduleArgs,
    BeatArgs,
    RollupArgs,
    ReconcileArgs,
    SpawnArgs,
    UndoChildArgs,
)
BY_SCRIPT = {cls.script: cls for cls in ALL}


def names(cls: type[ScriptArgs]) -> tuple[str, ...]:
    """Every ARGV name of a script, header included, in order."""
    header = ENGINE_HEADER if cls.engine else PLAIN_HEADER
    return (*header, *_field_names(cls))


def lua_args(script: str) -> str:
    """``A``: the script's arguments by name (the variadic one as a list), one constructor."""
    cls = BY_SCRIPT[script]
    fields = [
        f"{n} = rest({k})" if n == cls.variadic else f"{n} = ARGV[{k}]"
        for k, n in enumerate(names(cls), start=1)
    ]
    return "local A = {" + ", ".join(fields) + "}\n"
