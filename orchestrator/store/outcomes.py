"""What the engine scripts answer, as typed values.

Each script's reply is parsed into one of these in ``replies`` (and nowhere
else), so callers match on types and read named fields. Every reply also
carries the decisions the script made on the way (``decisions``) when the
caller asked for them: a breaker that opened, a retry the budget refused, a
join that fired, a run that ended. Hooks and telemetry are built on those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.resilience.decision import Veto
from orchestrator.states import RunState

# -- decisions made inside a script -------------------------------------------


@dataclass(frozen=True, slots=True)
class StepMoved:
    """A step (or one map element's retry, ``dst`` None) changed state."""

    step: str
    src: str | None
    dst: str | None
    index: int | None = None
    attempt: int | None = None
    error: str | None = None
    delay: float | None = None
    signal: str | None = None
    worker: str | None = None
    reason: str | None = None
    waited: float | None = None  # seconds in WAITING, for a step that leaves it


@dataclass(frozen=True, slots=True)
class RunMoved:
    src: str | None
    dst: str
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BreakerMoved:
    step: str
    dependency: str
    state: str


@dataclass(frozen=True, slots=True)
class BudgetRefused:
    step: str
    dependency: str


@dataclass(frozen=True, slots=True)
class AdmissionWait:
    """A dependency's rate or concurrency limit sent the attempt back for ``delay`` s."""

    step: str
    index: int | None
    dependency: str
    why: str
    delay: float


@dataclass(frozen=True, slots=True)
class CompensationNote:
    """A compensation attempt started, or was scheduled for a retry."""

    step: str
    what: str
    attempt: int
    delay: float | None = None
    error: str | None = None


Decision = StepMoved | RunMoved | BreakerMoved | BudgetRefused | AdmissionWait | CompensationNote

# -- claims ---------------------------------------------------------------------


class Mode(StrEnum):
    """How a claimed attempt runs."""

    TASK = "task"
    FALLBACK = "fallback"  # the breaker is open; the fallback answers
    OPEN = "open"  # the breaker is open and there is no fallback: fail fast
    GATE = "gate"  # evaluate the `when` predicate first; nothing was recorded
    COMPENSATE = "compensate"
    CHILD = "child"  # the step's child run has ended: record what it gave


@dataclass(frozen=True, slots=True)
class Inputs:
    """What an attempt (or a predicate, or a compensation) is given to run."""

    attempt: int
    input_json: str
    mode: Mode
    upstream_json: dict[str, str | None]
    queued_at: float | None = None
    started_at: float | None = None
    #: What the producer's hooks carried with the run (hooks.Hooks.propagate).
    context: Mapping[str, str] = field(default_factory=dict)

    @property
    def queue_delay(self) -> float | None:
        if self.queued_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.queued_at)


@dataclass(frozen=True, slots=True)
class Run:
    """The attempt may run (or its gate be evaluated, when ``inputs.mode`` is GATE)."""

    inputs: Inputs
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Wait:
    """Not now: a dependency limit requeued the attempt for ``seconds``, holding no worker."""

    why: str
    seconds: float
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Waiting:
    """A gated approval step's predicate held: it now waits for its signal."""

    step: str
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to run: the step is already in ``state`` (a duplicate or late message)."""

    state: str
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Stop:
    """The run is in ``state`` and starts nothing (cancelled, failed, finished)."""

    state: str
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Gone:
    """The run does not exist (never, or expired)."""

    decisions: tuple[Decision, ...] = ()


Claim = Run | Wait | Waiting | Skip | Stop | Gone

# -- recording outcomes ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handoff:
    """The attempt a recording script claimed for the runner lane to run next."""

    step: str
    index: int | None
    token: str
    inputs: Inputs


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome was recorded. ``ended`` is the run's terminal state if this ended it."""

    ended: RunState | None = None
    retry_in: float | None = None
    veto: Veto | None = None
    handoff: Handoff | None = None
    decisions: tuple[Decision, ...] = ()
    #: The recorded outcome is a failure for good (the step is FAILED).
    failed: bool = False


@dataclass(frozen=True, slots=True)
class Stale:
    """Not recorded: another attempt owns the step now (``why``: its state, or 'token')."""

    why: str
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class UseFallback:
    """The retry budget of ``dependency`` refused a retry and the step has a fallback."""

    dependency: str
    decisions: tuple[Decision, ...] = ()


Recording = Recorded | Stale | UseFallback | Stop | Gone
#: What skip and timeout answer.
Settled = Recorded | Stale | Stop | Gone


class UndoOutcome(StrEnum):
    COMPENSATED = "compensated"
    RETRYING = "retrying"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class UndoRecorded:
    outcome: UndoOutcome
    ended: RunState | None = None
    decisions: tuple[Decision, ...] = ()


UndoRecording = UndoRecorded | Stale | Gone

# -- child workflows -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spawned:
    """The step's child run started (``created`` False: it had been, by this attempt)."""

    child: str
    created: bool
    decisions: tuple[Decision, ...] = ()


#: What spawn answers: a refusal is a ``Recorded`` failure (the step failed for good).
SpawnOutcome = Spawned | Recorded | Stale | Gone


class ChildUndo(StrEnum):
    PENDING = "pending"  # a child is compensating; its end queues the compensation again
    DONE = "done"  # nothing of the children is left to undo
    FAILED = "failed"  # a child's compensation failed for good


@dataclass(frozen=True, slots=True)
class ChildrenUndone:
    outcome: ChildUndo
    child: str = ""
    error: str = ""


ChildUndoOutcome = ChildrenUndone | Stale | Gone

# -- run-level commands -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submitted:
    run_id: str
    created: bool
    decisions: tuple[Decision, ...] = ()
    #: A run whose concurrency slot this one took (strategy cancel_oldest): cancel it.
    evicted: str = ""


@dataclass(frozen=True, slots=True)
class NoPlan:
    ref: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Admission control refused a submit: ``scope`` 'workflow' or 'key' is at its limit."""

    scope: str
    limit: int
    queued: int


@dataclass(frozen=True, slots=True)
class Signalled:
    steps: tuple[str, ...]
    ended: RunState | None = None
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class NotWaiting:
    """No step waits for the signal now; each candidate step's state."""

    states: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """The cancel took, or had already: the run's state after it."""

    state: str
    already: bool = False
    ended: RunState | None = None
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Final:
    """The run had already ended in ``state``."""

    state: str


@dataclass(frozen=True, slots=True)
class Resumed:
    run_id: str
    created: bool


@dataclass(frozen=True, slots=True)
class WrongState:
    state: str


@dataclass(frozen=True, slots=True)
class Reopened:
    step: str


@dataclass(frozen=True, slots=True)
class Registered:
    created: bool


@dataclass(frozen=True, slots=True)
class Conflict:
    pass


SignalOutcome = Signalled | NotWaiting | Stop | Gone


@dataclass(frozen=True, slots=True)
class Redispatched:
    """Work whose message was lost and that the reconciler sent again (reconcile.lua)."""

    run_id: str
    step: str
    index: int | None


class ScheduleResult(StrEnum):
    """What schedule.lua did: a change made, or why it made none."""

    OK = "ok"
    EXISTS = "exists"  # add: a schedule of that name exists
    MISSING = "missing"  # no schedule of that name
    UNCHANGED = "unchanged"  # pause of a paused one, resume of an active one
    STALE = "stale"  # advance: another ticker moved the schedule on first
