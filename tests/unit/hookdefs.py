"""Hook classes the hook tests install, some of them by ``module:attr`` path."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from orchestrator.hooks import AttemptFinished, AttemptStarted, Hooks, RunEvent, RunFinished


class Recorder(Hooks):
    """Overrides two methods and keeps what they received."""

    def __init__(self) -> None:
        self.seen: list[RunEvent] = []

    def on_attempt_finished(self, event: AttemptFinished) -> None:
        self.seen.append(event)

    def on_run_finished(self, event: RunFinished) -> None:
        self.seen.append(event)


class Boom(Hooks):
    """A hook with a bug: it raises on every attempt start."""

    def __init__(self) -> None:
        self.calls = 0

    def on_attempt_started(self, event: AttemptStarted) -> None:
        self.calls += 1
        raise RuntimeError(f"boom on {event.step}")


class Interrupting(Hooks):
    """Raises what is not an error of the hook's: the process is being stopped."""

    def on_run_finished(self, event: RunFinished) -> None:
        raise KeyboardInterrupt


class DuckFinished:
    """Not a Hooks subclass: it has the one method it cares about."""

    def __init__(self) -> None:
        self.seen: list[RunFinished] = []

    def on_run_finished(self, event: RunFinished) -> None:
        self.seen.append(event)


class NeedsArgs(Hooks):
    def __init__(self, level: int) -> None:
        self.level = level


class Namespace:
    """Holds a hook class one attribute down, for a dotted ``module:Outer.Inner`` path."""

    class Inner(Recorder):
        pass


#: An instance, which ``ORCH_HOOKS`` installs as it is.
INSTANCE = Recorder()

#: Not a class nor a hook; ``ORCH_HOOKS`` takes any object as it is.
NOT_A_HOOK = 42


_SAMPLES: dict[object, object] = {
    str: "x",
    int: 3,
    float: 0.25,
    bool: True,
    BaseException: ValueError("sample"),
    Mapping[str, str]: {"traceparent": "00-sample-01"},
    tuple[str, ...]: ("upstream",),
}


def sample_event(cls: type[RunEvent], **overrides: Any) -> RunEvent:
    """An instance of any event type, each field filled with a value of its type."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):  # ``X | None``: take the X
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        values[f.name] = _SAMPLES[hint]
    values.update(overrides)
    return cls(**values)
