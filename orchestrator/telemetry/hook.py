"""``OpenTelemetry``: the one hook that turns telemetry on (traces and metrics)."""

from __future__ import annotations

from opentelemetry import metrics, trace

from orchestrator import hooks as h
from orchestrator.telemetry import sdk
from orchestrator.telemetry.metrics import Metrics
from orchestrator.telemetry.traces import Traces


class OpenTelemetry(h.Hooks):
    """Traces and metrics of every run, through OpenTelemetry.

    ``ORCH_HOOKS=orchestrator.telemetry:OpenTelemetry`` installs it on the
    producer and on every worker process. Built with no providers, it first
    sets up the SDK from ``OTEL_*`` (see ``telemetry.sdk``) unless the process
    has providers already; given providers, it uses those and sets up nothing.
    With neither a real tracer nor a real meter provider (the ``[otel]`` extra
    absent, or ``OTEL_SDK_DISABLED=true``) it is disabled, and the hook chain
    leaves it out: it costs nothing.
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
        self._parts = h.HookChain([self.traces, self.metrics])
        self.enabled = bool(self._parts)

    def propagate(self) -> dict[str, str]:
        return self._parts.propagate()

    def on_run_submitted(self, event: h.RunSubmitted) -> None:
        self._parts.emit(event)

    def on_step_claimed(self, event: h.StepClaimed) -> None:
        self._parts.emit(event)

    def on_attempt_started(self, event: h.AttemptStarted) -> None:
        self._parts.emit(event)

    def on_attempt_finished(self, event: h.AttemptFinished) -> None:
        self._parts.emit(event)

    def on_retry_scheduled(self, event: h.RetryScheduled) -> None:
        self._parts.emit(event)

    def on_budget_denied(self, event: h.BudgetDenied) -> None:
        self._parts.emit(event)

    def on_breaker_changed(self, event: h.BreakerChanged) -> None:
        self._parts.emit(event)

    def on_wait_started(self, event: h.WaitStarted) -> None:
        self._parts.emit(event)

    def on_wait_ended(self, event: h.WaitEnded) -> None:
        self._parts.emit(event)

    def on_compensation_started(self, event: h.CompensationStarted) -> None:
        self._parts.emit(event)

    def on_compensation_finished(self, event: h.CompensationFinished) -> None:
        self._parts.emit(event)

    def on_run_finished(self, event: h.RunFinished) -> None:
        self._parts.emit(event)
