"""Span ids fixed in advance: how the run span gets the id its children already point to.

A run's steps start (on any worker) long before the run ends, and each step
span names the run span as its parent. So the run span's id is chosen at
submit and carried with the run, and the span itself is only emitted when the
run ends, in whatever process ends it. The OpenTelemetry API has no way to
start a span with a given id; the SDK's tracer asks its id generator for one.
:class:`PresetIds` wraps that generator: inside :meth:`PresetIds.preset` the
next span (and, for a root, trace) id it hands out is the preset one; any
other time it delegates, so every other span keeps the SDK's ids.

Only our own tracer (the ``orchestrator`` instrumentation scope) is wrapped.
A tracer without an ``id_generator`` (not the SDK's) cannot be given ids, and
the run span is then left out rather than emitted with a wrong id.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class IdSource(Protocol):
    """What the SDK's tracer calls on its ``id_generator`` (the SDK's IdGenerator)."""

    def generate_span_id(self) -> int: ...

    def generate_trace_id(self) -> int: ...


class _Random:
    """Ids for a tracer that has no generator of its own (W3C: 64 and 128 random bits)."""

    def generate_span_id(self) -> int:
        return random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return random.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True


class PresetIds:
    """An id generator that hands out preset ids once, inside :meth:`preset`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._next: ContextVar[list[int] | None] = ContextVar("orch_preset_ids", default=None)

    def generate_span_id(self) -> int:
        pending = self._next.get()
        if pending:
            span_id = pending[1]
            pending.clear()  # once: a span the SDK starts meanwhile gets its own id
            return span_id
        return int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        pending = self._next.get()
        if pending:
            return pending[0]
        return int(self.inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        probe = getattr(self.inner, "is_trace_id_random", None)
        return bool(probe()) if probe is not None else False

    @contextmanager
    def preset(self, trace_id: int, span_id: int) -> Iterator[None]:
        """The next span started in this context gets ``span_id`` (and ``trace_id``, as a root)."""
        token = self._next.set([trace_id, span_id])
        try:
            yield
        finally:
            self._next.reset(token)


def install(tracer: object) -> PresetIds | None:
    """Wrap ``tracer``'s id generator (once); None for a tracer that has none."""
    inner = getattr(tracer, "id_generator", None)
    if inner is None:
        return None
    if isinstance(inner, PresetIds):
        return inner
    wrapped = PresetIds(inner)
    tracer.id_generator = wrapped  # type: ignore[attr-defined]
    return wrapped


def source(ids: PresetIds | None) -> IdSource:
    """Where fresh ids come from: the tracer's own generator, else random bits."""
    return ids if ids is not None else _Random()
