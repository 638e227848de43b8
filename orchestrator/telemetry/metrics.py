"""Metrics: the scorecard's quantities as OpenTelemetry instruments, counted where they happen.

Each process counts what it saw (its attempts, the runs it ended) and its
meter provider exports them; adding the series of every process gives the
pipeline's totals. The Redis-kept scorecard (``orch metrics``) is the same
story told by the engine itself: exact, kept per workflow version over time,
readable without a metrics backend. These instruments are for the dashboards
and alerts a team already has.
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.util.types import AttributeValue

from orchestrator import __version__
from orchestrator import hooks as h
from orchestrator.errors import HandoffError
from orchestrator.telemetry import names as n

#: Bucket bounds (seconds) for the queue-delay and attempt-duration histograms:
#: log-spaced from 1 ms to about 17 min, so a p99 is read to within a factor of ~2.
SECONDS_BUCKETS = tuple(round(0.001 * 2**k, 6) for k in range(21))

_HANDED = frozenset({h.Outcome.SUCCEEDED, h.Outcome.FALLBACK})

Attributes = dict[str, AttributeValue]


def _recording(provider: metrics.MeterProvider, meter: metrics.Meter) -> bool:
    """Whether measurements go anywhere: a real provider is set and not disabled."""
    idle = (metrics.NoOpMeterProvider, metrics._internal._ProxyMeterProvider)
    return not isinstance(provider, idle) and not isinstance(meter, metrics.NoOpMeter)


class Metrics(h.Hooks):
    """The metrics hook. Without a real meter provider it is disabled (``enabled`` False)."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter(n.SCOPE, __version__)
        self.enabled = _recording(provider, meter)
        counter = meter.create_counter
        self.runs_submitted = counter(n.RUNS_SUBMITTED, "{run}", "Runs created by submit")
        self.runs_finished = counter(n.RUNS_FINISHED, "{run}", "Runs that reached a final state")
        self.attempts = counter(n.ATTEMPTS, "{attempt}", "Step attempts, by outcome")
        self.retries = counter(n.RETRIES, "{retry}", "Retries scheduled after a failed attempt")
        self.handoffs = counter(n.HANDOFFS, "{handoff}", "Handoffs across edges, valid or not")
        self.denials = counter(n.BUDGET_DENIALS, "{denial}", "Retries a retry budget refused")
        self.waits = counter(n.WAITS, "{wait}", "Approval waits that ended, by outcome")
        self.compensations = counter(n.COMPENSATIONS, "{compensation}", "Compensation attempts")
        self.queue_delay = meter.create_histogram(
            n.QUEUE_DELAY_HISTOGRAM,
            "s",
            "From a step becoming runnable to its attempt starting",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.duration = meter.create_histogram(
            n.ATTEMPT_DURATION,
            "s",
            "How long step attempts ran",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
        )
        self.breaker = meter.create_gauge(
            n.BREAKER, "1", "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open"
        )

    def on_run_submitted(self, event: h.RunSubmitted) -> None:
        if event.created:
            self.runs_submitted.add(1, _version(event))

    def on_run_finished(self, event: h.RunFinished) -> None:
        self.runs_finished.add(1, {**_version(event), n.STATE: event.state})

    def on_attempt_started(self, event: h.AttemptStarted) -> None:
        if event.queue_delay is not None:
            self.queue_delay.record(event.queue_delay, {**_version(event), n.QUEUE: event.queue})

    def on_attempt_finished(self, event: h.AttemptFinished) -> None:
        at = {**_version(event), n.STEP: event.step, n.OUTCOME: event.outcome}
        self.attempts.add(1, at)
        self.duration.record(event.duration, at)
        self._handoffs(event)

    def _handoffs(self, event: h.AttemptFinished) -> None:
        """A bad handoff fails the attempt naming its edge; a step that ran got all its inputs."""
        if isinstance(event.exception, HandoffError):
            self.handoffs.add(1, {**_version(event), n.EDGE: event.exception.edge, n.VALID: False})
        elif event.outcome in _HANDED:
            for upstream in event.upstreams:
                edge = f"{upstream} → {event.step}"
                self.handoffs.add(1, {**_version(event), n.EDGE: edge, n.VALID: True})

    def on_retry_scheduled(self, event: h.RetryScheduled) -> None:
        self.retries.add(1, {**_version(event), n.STEP: event.step, n.REASON: event.reason})

    def on_budget_denied(self, event: h.BudgetDenied) -> None:
        self.denials.add(1, {**_version(event), n.DEPENDENCY: event.dependency})

    def on_breaker_changed(self, event: h.BreakerChanged) -> None:
        level = n.BREAKER_LEVELS.get(event.state)
        if level is not None:
            self.breaker.set(level, {n.DEPENDENCY: event.dependency})

    def on_wait_ended(self, event: h.WaitEnded) -> None:
        self.waits.add(1, {**_version(event), n.STEP: event.step, n.OUTCOME: event.outcome})

    def on_compensation_finished(self, event: h.CompensationFinished) -> None:
        at = {**_version(event), n.STEP: event.step, n.OUTCOME: event.outcome}
        self.compensations.add(1, at)


def _version(event: h.RunEvent) -> Attributes:
    return {n.WORKFLOW: event.workflow, n.VERSION: event.version}
