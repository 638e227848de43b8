"""``OpenTelemetry``: the one hook that turns telemetry on (traces and metrics)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace

from orchestrator import hooks as h
from orchestrator.telemetry import sdk
from orchestrator.telemetry.metrics import Metrics
from orchestrator.telemetry.traces import Traces

#: The event methods of the protocol.
EVENT_METHODS = tuple(
    name for name, _ in inspect.getmembers(h.Hooks, inspect.isfunction) if name.startswith("on_")
)


class OpenTelemetry(h.Hooks):
    """Traces and metrics of every run, through OpenTelemetry.

    ``ORCH_HOOKS=orchestrator.telemetry:OpenTelemetry`` installs it on the
    producer and on every worker process. Built with no providers, it first
    sets up the SDK from ``OTEL_*`` (see ``telemetry.sdk``) unless the process
    has providers already; given providers, it uses those and sets up nothing.
    With neither a real tracer nor a real meter provider (the ``[otel]`` extra
    absent, or ``OTEL_SDK_DISABLED=true``) it is disabled, and the hook chain
    leaves it out: it costs nothing.

    Each event goes straight to the parts that handle it: an event neither
    handles (a claim, say) is not even dispatched (see ``_dispatch``).
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        if tracer_provider is None and meter_provider is None:
            sdk.configure()
        self.traces = Traces(tracer_provider)
        self.metrics = Metrics(meter_provider)
        parts: list[h.Hooks] = [p for p in (self.traces, self.metrics) if p.enabled]
        self.enabled = bool(parts)
        self._parts = h.HookChain(parts)
        for name in EVENT_METHODS:
            setattr(self, name, self._dispatch(name, parts))

    def propagate(self) -> dict[str, str]:
        return self._parts.propagate()

    def _dispatch(self, name: str, parts: list[h.Hooks]) -> Callable[[Any], None] | None:
        """What receives event method ``name``: None (the chain skips it) when no part does.

        One part gets the event directly; two go through a chain of the parts,
        so that one raising does not keep the event from the other.
        """
        handlers = [p for p in parts if _handles(p, name)]
        if not handlers:
            return None
        if len(handlers) == 1:
            method: Callable[[Any], None] = getattr(handlers[0], name)
            return method
        return self._parts.emit


def _handles(part: h.Hooks, name: str) -> bool:
    """Whether ``part`` overrides the no-op of event method ``name``."""
    return getattr(type(part), name) is not getattr(h.Hooks, name)
