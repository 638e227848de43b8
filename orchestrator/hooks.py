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
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.hooks_events import (
    Admission,
    AttemptEvent,
    AttemptFinished,
    AttemptStarted,
    BreakerChanged,
    BreakerState,
    BudgetDenied,
    CompensationFinished,
    CompensationOutcome,
    CompensationStarted,
    Outcome,
    RetryScheduled,
    RunEvent,
    RunFinished,
    RunSubmitted,
    StepClaimed,
    StepEvent,
    WaitEnded,
    WaitOutcome,
    WaitStarted,
)

__all__ = [
    "SETTING",
    "Admission",
    "AttemptEvent",
    "AttemptFinished",
    "AttemptStarted",
    "BreakerChanged",
    "BreakerState",
    "BudgetDenied",
    "CompensationFinished",
    "CompensationOutcome",
    "CompensationStarted",
    "HookChain",
    "Hooks",
    "Outcome",
    "RetryScheduled",
    "RunEvent",
    "RunFinished",
    "RunSubmitted",
    "StepClaimed",
    "StepEvent",
    "WaitEnded",
    "WaitOutcome",
    "WaitStarted",
    "load_hooks",
]

log = logging.getLogger("orchestrator.hooks")

#: The setting that installs hooks from the environment; errors name it.
SETTING = "ORCH_HOOKS"


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
        """The hooks' bound methods for one event type, looked up once.

        A :class:`Hooks` subclass receives only the events it overrides: the
        no-op it inherits is not called, and an event no hook overrides is
        not even built (``wants``).
        """
        found = self._methods.get(name)
        if found is None:
            pairs = ((hook, getattr(hook, name, None)) for hook in self._hooks)
            found = tuple((hook, m) for hook, m in pairs if m is not None and _own(m, name))
            self._methods[name] = found
        return found


def _own(method: Callable[..., Any], name: str) -> bool:
    """Whether ``method`` is not the do-nothing one a hook inherits from :class:`Hooks`."""
    return getattr(method, "__func__", None) is not getattr(Hooks, name, None)


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
