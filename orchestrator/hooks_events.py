"""The typed events the engine hands its hooks, and the words their fields use.

Events are frozen, so one event object can be handed to every hook without one
hook's change leaking into the next. Each event class names the ``Hooks``
method that receives it (its ``hook`` class variable), so dispatch is a lookup,
not a chain of type tests. Import them from ``orchestrator.hooks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


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


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEvent(RunEvent):
    """An event about one step of a run."""

    step: str


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSubmitted(RunEvent):
    """Producer, after a submit. ``created`` is False when ``key`` found an existing run."""

    hook: ClassVar[str] = "on_run_submitted"

    key: str | None
    created: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StepClaimed(AttemptEvent):
    """Worker, after the engine decided whether a claimed step may run.

    ``admission`` is an :class:`Admission`; for the two waits, ``wait`` is how
    many seconds the step was put back for (it holds no worker meanwhile).
    """

    hook: ClassVar[str] = "on_step_claimed"

    admission: str
    wait: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptStarted(AttemptEvent):
    """Worker, just before the step's code runs.

    ``queue_delay`` is the seconds from runnable to started, when known.
    """

    hook: ClassVar[str] = "on_attempt_started"

    queue: str
    queue_delay: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryScheduled(StepEvent):
    """Worker, when a failed attempt will be retried after ``delay`` seconds."""

    hook: ClassVar[str] = "on_retry_scheduled"

    index: int | None
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetDenied(StepEvent):
    """Worker, when the retry budget of ``dependency`` refused a retry."""

    hook: ClassVar[str] = "on_budget_denied"

    dependency: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerChanged(StepEvent):
    """Worker, when the circuit breaker of ``dependency`` moved to ``state`` (a BreakerState).

    ``step`` is the step whose call moved it.
    """

    hook: ClassVar[str] = "on_breaker_changed"

    dependency: str
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitStarted(StepEvent):
    """Worker, when a ``wait_for`` step starts waiting for ``signal`` (``timeout`` seconds),
    or a sleep step starts sleeping (``signal`` empty)."""

    hook: ClassVar[str] = "on_wait_started"

    signal: str
    timeout: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitEnded(StepEvent):
    """Where the wait ended (signal or timeout sweep); ``outcome`` is a WaitOutcome.

    ``waited`` is the seconds the step waited (by the Redis clock), when known.
    """

    hook: ClassVar[str] = "on_wait_ended"

    signal: str
    outcome: str
    waited: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationStarted(StepEvent):
    """Worker, just before a step's compensation runs."""

    hook: ClassVar[str] = "on_compensation_started"

    attempt: int
    worker: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompensationFinished(StepEvent):
    """Worker, once a compensation attempt's outcome (a CompensationOutcome) is recorded."""

    hook: ClassVar[str] = "on_compensation_finished"

    attempt: int
    outcome: str
    duration: float
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(RunEvent):
    """Wherever the engine call that ended the run was made; ``state`` is the final RunState."""

    hook: ClassVar[str] = "on_run_finished"

    state: str
    error: str | None
