"""The typed events the engine hands its hooks, and the words their fields use.

Events are frozen, so one event object can be handed to every hook without one
hook's change leaking into the next. Each event class names the ``Hooks``
method that receives it (its ``hook`` class variable), so dispatch is a lookup,
not a chain of type tests. An observed worker builds two events on every
attempt, so each class's ``__init__`` sets its fields in one step
(``_set_at_once``). Import them from ``orchestrator.hooks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

_E = TypeVar("_E")


class Admission(StrEnum):
    """What the engine decided when a worker claimed a step."""

    RUN = "run"  # admitted: the step's code runs now
    FALLBACK = "fallback"  # breaker open: the step's fallback answers instead
    BREAKER_OPEN = "breaker_open"  # breaker open and no fallback: the step fails fast
    WAIT_RATE = "wait_rate"  # requeued until the dependency's rate allows it
    WAIT_CONCURRENCY = "wait_concurrency"  # requeued until a concurrency slot frees
    SKIPPED = "skipped"  # duplicate, stale or not runnable: nothing to do
    STOPPED = "stopped"  # the run is no longer running


class Outcome(StrEnum):
    """How one attempt of a step ended."""

    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"
    FALLBACK = "fallback"  # the step's fallback produced the output
    STALE = "stale"  # another attempt owns the step; nothing was recorded


class BreakerState(StrEnum):
    OPEN = "open"
    HALF_OPEN = "half_open"
    CLOSED = "closed"


class WaitOutcome(StrEnum):
    SIGNALLED = "signalled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    WOKE = "woke"  # a durable sleep (`sleep:` / `until:`) reached its time
    CHILD_ENDED = "child_ended"  # a child workflow step's child run ended


class CompensationOutcome(StrEnum):
    COMPENSATED = "compensated"
    RETRYING = "retrying"
    FAILED = "failed"


# --- events ------------------------------------------------------------------


def _set_at_once(cls: type[_E]) -> type[_E]:
    """Give a frozen event dataclass an ``__init__`` that sets all its fields in one step.

    A frozen dataclass's own ``__init__`` sets each field through
    ``object.__setattr__``, about 0.2 µs a field, and an observed worker builds
    an ``AttemptStarted`` (12 fields) and an ``AttemptFinished`` (19) on every
    attempt. This ``__init__`` takes the same keyword-only arguments with the
    same defaults and fills the instance's ``__dict__`` with one update, in half
    the time. Assigning a field afterwards still raises
    ``FrozenInstanceError``: the class's ``__setattr__`` is the dataclass's.
    """
    unsupported = [f.name for f in fields(cls) if not f.init]  # type: ignore[arg-type]
    if unsupported or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: _set_at_once supports neither init=False fields "
                        f"({', '.join(unsupported) or 'none here'}) nor __post_init__")  # fmt: skip
    scope: dict[str, Any] = {"MISSING": MISSING}
    params, lines = [], []
    for f in fields(cls):  # type: ignore[arg-type]  # a dataclass, checked by fields()
        if f.default is not MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=MISSING")
            lines.append(f"    if {f.name} is MISSING:\n        {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
    values = ", ".join(f"{f.name!r}: {f.name}" for f in fields(cls))  # type: ignore[arg-type]
    lines.append(f"    self.__dict__.update({{{values}}})")
    exec(f"def __init__(self, *, {', '.join(params)}):\n" + "\n".join(lines), scope)
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010  # replacing the generated one
    return cls


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class RunEvent:
    """Identity of the run an event belongs to; the base of every event."""

    #: The name of the ``Hooks`` method that receives this event type.
    hook: ClassVar[str]

    run_id: str
    workflow: str
    version: int
    #: What the producer's hooks carried with the run (:meth:`Hooks.propagate`),
    #: handed back on every process that works on it.
    context: Mapping[str, str] = field(default_factory=dict)


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class StepEvent(RunEvent):
    """An event about one step of a run."""

    step: str


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class AttemptEvent(StepEvent):
    """An event about one attempt of a step, on the worker that holds it.

    ``index`` is the element of a mapped step (None otherwise); ``lane`` is True
    when a runner lane took the step (the next step run from the same Celery
    message) rather than a message delivery. ``dependency`` names the step's
    dependency ("" for a step without one).
    """

    index: int | None
    attempt: int
    worker: str
    lane: bool
    dependency: str = ""


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class RunSubmitted(RunEvent):
    """Producer, after a submit. ``created`` is False when ``key`` found an existing run."""

    hook: ClassVar[str] = "on_run_submitted"

    key: str | None
    created: bool


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class StepClaimed(AttemptEvent):
    """Worker, after the engine decided whether a claimed step may run.

    ``admission`` is an :class:`Admission`; for the two waits, ``wait`` is how
    many seconds the step was put back for (it holds no worker meanwhile).
    """

    hook: ClassVar[str] = "on_step_claimed"

    admission: str
    wait: float = 0.0


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class AttemptStarted(AttemptEvent):
    """Worker, just before the step's code runs.

    ``queue_delay`` is the seconds from runnable to started, when known.
    """

    hook: ClassVar[str] = "on_attempt_started"

    queue: str
    queue_delay: float | None


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class AttemptFinished(AttemptEvent):
    """Worker, once the attempt's outcome (an :class:`Outcome`) is recorded.

    ``duration`` is the seconds the attempt ran; ``error`` the recorded message
    and ``exception`` the exception itself for a failed or retried attempt;
    ``retry_delay`` the seconds until the retry of a retrying one. ``breaker``
    is the state of the dependency's breaker this attempt met or left: ``open``
    when the open breaker answered it, else the state its outcome moved the
    breaker to, or None. ``upstreams`` are the steps whose outputs the step
    was handed (its handoffs are the edges ``{upstream} → {step}``).
    """

    hook: ClassVar[str] = "on_attempt_finished"

    queue: str
    outcome: str
    duration: float
    queue_delay: float | None
    error: str | None
    exception: BaseException | None
    retry_delay: float | None = None
    breaker: str | None = None
    upstreams: tuple[str, ...] = ()


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class RetryScheduled(StepEvent):
    """Worker, when a failed attempt will be retried after ``delay`` seconds."""

    hook: ClassVar[str] = "on_retry_scheduled"

    index: int | None
    attempt: int
    delay: float
    reason: str


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class BudgetDenied(StepEvent):
    """Worker, when the retry budget of ``dependency`` refused a retry."""

    hook: ClassVar[str] = "on_budget_denied"

    dependency: str


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class BreakerChanged(StepEvent):
    """Worker, when the circuit breaker of ``dependency`` moved to ``state`` (a BreakerState).

    ``step`` is the step whose call moved it.
    """

    hook: ClassVar[str] = "on_breaker_changed"

    dependency: str
    state: str


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class WaitStarted(StepEvent):
    """Worker, when a ``wait_for`` step starts waiting for ``signal`` (``timeout`` seconds),
    or a sleep step starts sleeping (``signal`` empty)."""

    hook: ClassVar[str] = "on_wait_started"

    signal: str
    timeout: float | None


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class WaitEnded(StepEvent):
    """Where the wait ended (signal or timeout sweep); ``outcome`` is a WaitOutcome.

    ``waited`` is the seconds the step waited (by the Redis clock), when known.
    """

    hook: ClassVar[str] = "on_wait_ended"

    signal: str
    outcome: str
    waited: float | None = None


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class CompensationStarted(StepEvent):
    """Worker, just before a step's compensation runs."""

    hook: ClassVar[str] = "on_compensation_started"

    attempt: int
    worker: str


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class CompensationFinished(StepEvent):
    """Worker, once a compensation attempt's outcome (a CompensationOutcome) is recorded."""

    hook: ClassVar[str] = "on_compensation_finished"

    attempt: int
    outcome: str
    duration: float
    error: str | None


@_set_at_once
@dataclass(frozen=True, kw_only=True)
class RunFinished(RunEvent):
    """Wherever the engine call that ended the run was made; ``state`` is the final RunState."""

    hook: ClassVar[str] = "on_run_finished"

    state: str
    error: str | None
