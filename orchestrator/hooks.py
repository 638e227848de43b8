"""Engine hooks: a middleware protocol that sees every engine decision as a typed event.

Subclass :class:`Hooks` and override the methods you need; every method does
nothing by default, so a hook written today keeps working when new events are
added. Install hooks with ``ORCH_HOOKS`` (comma-separated ``module:attr``, a
class or an instance) or ``Client(hooks=[...])``::

    import logging
    from orchestrator.hooks import AttemptFinished, Hooks

    class LogAttempts(Hooks):
        def on_attempt_finished(self, event: AttemptFinished) -> None:
            logging.info("%s.%s #%d %s in %.3fs", event.workflow, event.step,
                         event.attempt, event.outcome, event.duration)

Hooks run synchronously, in the process where the decision was made (the
producer for submits, the worker for everything a step does), so keep them
fast: a slow hook slows the engine. A hook that raises is logged and skipped;
it never breaks a step or a transition.

Events are frozen, so one event object can be handed to every hook without one
hook's change leaking into the next. Each event class names the ``Hooks``
method that receives it (its ``hook`` class variable), so dispatch is a lookup,
not a chain of type tests.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from orchestrator.errors import SpecError

log = logging.getLogger("orchestrator.hooks")

#: The setting that installs hooks from the environment; errors name it.
SETTING = "ORCH_HOOKS"


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
    """Worker, when a ``wait_for`` step starts waiting for ``signal`` (``timeout`` seconds)."""

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


# --- the protocol --------------------------------------------------------------


class Hooks:
    """Base class of engine hooks: override the methods you need; the rest do nothing."""

    def propagate(self) -> Mapping[str, str]:
        """Context to carry with a run being submitted, as string pairs.

        Called on the producer just before a submit; what it returns is stored
        with the run and comes back as ``event.context`` in every event of the
        run, on every worker. Telemetry carries the trace this way (a W3C
        ``traceparent``); a hook may carry a correlation id. Default: nothing.
        """
        return {}

    def on_run_submitted(self, event: RunSubmitted) -> None:
        """A run was submitted (or found by its idempotency key)."""

    def on_step_claimed(self, event: StepClaimed) -> None:
        """A worker claimed a step and the engine made its admission decision."""

    def on_attempt_started(self, event: AttemptStarted) -> None:
        """A step's code is about to run."""

    def on_attempt_finished(self, event: AttemptFinished) -> None:
        """An attempt ended and its outcome is recorded."""

    def on_retry_scheduled(self, event: RetryScheduled) -> None:
        """A failed attempt will be retried after a backoff."""

    def on_budget_denied(self, event: BudgetDenied) -> None:
        """A dependency's retry budget refused a retry."""

    def on_breaker_changed(self, event: BreakerChanged) -> None:
        """A dependency's circuit breaker changed state."""

    def on_wait_started(self, event: WaitStarted) -> None:
        """A step started waiting for a signal."""

    def on_wait_ended(self, event: WaitEnded) -> None:
        """A wait ended: signalled, timed out or skipped."""

    def on_compensation_started(self, event: CompensationStarted) -> None:
        """A step's compensation is about to run."""

    def on_compensation_finished(self, event: CompensationFinished) -> None:
        """A compensation attempt ended and its outcome is recorded."""

    def on_run_finished(self, event: RunFinished) -> None:
        """A run reached a terminal state."""


class HookChain:
    """The installed hooks, called in order for each event.

    Any object will do as a hook: one that lacks the method for an event is
    skipped, so duck-typed hooks work, though subclassing :class:`Hooks` is
    the documented way. A hook whose ``enabled`` attribute is False is left
    out: one that found it has nothing to do (telemetry without an SDK) then
    costs nothing. An empty chain is falsy, so callers test it before building
    an event and pay nothing when no hook is installed.
    """

    __slots__ = ("_hooks", "_methods")

    def __init__(self, hooks: Iterable[object] = ()) -> None:
        self._hooks: tuple[object, ...] = tuple(
            hook for hook in hooks if getattr(hook, "enabled", True) is not False
        )
        self._methods: dict[str, tuple[tuple[object, Callable[..., Any]], ...]] = {}

    @property
    def hooks(self) -> tuple[object, ...]:
        """The hooks, in call order; fixed, since each event type's receivers are cached."""
        return self._hooks

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def __repr__(self) -> str:
        return f"HookChain({list(self._hooks)!r})"

    def wants(self, method: str) -> bool:
        """Whether any hook receives event method ``method`` (so the event is worth building)."""
        return bool(self._receivers(method))

    def emit(self, event: RunEvent) -> None:
        """Hand ``event`` to every hook; a hook that raises is logged, never propagated."""
        for hook, method in self._receivers(event.hook):
            try:
                method(event)
            except Exception as exc:
                if type(exc).__name__ == "SoftTimeLimitExceeded":
                    raise  # the step's time limit, not the hook's failure
                log.error(
                    "hook %s raised in %s for %s of run %s; the engine goes on without it",
                    _name_of(hook),
                    event.hook,
                    type(event).__name__,
                    event.run_id,
                    exc_info=True,
                )

    def propagate(self) -> dict[str, str]:
        """Every hook's context for a run being submitted, merged in hook order."""
        merged: dict[str, str] = {}
        for hook, method in self._receivers("propagate"):
            try:
                merged.update({str(k): str(v) for k, v in dict(method()).items()})
            except Exception:
                log.error("hook %s raised in propagate; its context is left out",
                          _name_of(hook), exc_info=True)  # fmt: skip
        return merged

    def _receivers(self, name: str) -> tuple[tuple[object, Callable[..., Any]], ...]:
        """The hooks' bound methods for one event type, looked up once."""
        found = self._methods.get(name)
        if found is None:
            pairs = ((hook, getattr(hook, name, None)) for hook in self._hooks)
            found = tuple((hook, method) for hook, method in pairs if method is not None)
            self._methods[name] = found
        return found


def _name_of(hook: object) -> str:
    cls = hook if isinstance(hook, type) else type(hook)
    return f"{cls.__module__}.{cls.__qualname__}"


# --- loading from ORCH_HOOKS ----------------------------------------------------


def load_hooks(spec: str) -> list[object]:
    """The hooks that ``ORCH_HOOKS`` names: comma-separated ``module:attr`` entries.

    A class is instantiated with no arguments; any other object is used as it
    is (an instance, typically). Empty entries are ignored, so a trailing comma
    is harmless. Errors are one-line SpecErrors naming the entry.
    """
    return [_load_one(entry) for entry in (e.strip() for e in spec.split(",")) if entry]


def _load_one(entry: str) -> object:
    where = f"{SETTING} entry {entry!r}"
    module_name, sep, attr = (part.strip() for part in entry.partition(":"))
    if not sep or not module_name or not attr:
        raise SpecError("expected module:attr", where=where)
    obj = _import(module_name, where)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"module {module_name!r} has no attribute {attr!r}", where=where)
        obj = getattr(obj, part)
    if not inspect.isclass(obj):
        return obj
    try:
        return obj()
    except Exception as exc:
        raise SpecError(f"cannot instantiate {attr!r}: {_cause(exc)}", where=where) from None


def _import(module_name: str, where: str) -> object:
    """The module; a module that is missing is said so, one that breaks says how."""
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        missing = isinstance(exc, ModuleNotFoundError) and (
            exc.name == module_name or module_name.startswith(f"{exc.name}.")
        )
        detail = "" if missing else f": {_cause(exc)}"
        raise SpecError(f"cannot import module {module_name!r}{detail}", where=where) from None


def _cause(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())
