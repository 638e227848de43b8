"""Metrics: the scorecard's quantities as OpenTelemetry instruments, counted where they happen.

Each process counts what it saw (its attempts, the runs it ended) and its
meter provider exports them; adding the series of every process gives the
pipeline's totals. The Redis-kept scorecard (``orch metrics``) is the same
story told by the engine itself: exact, kept per workflow version over time,
readable without a metrics backend. These instruments are for the dashboards
and alerts a team already has.

Counting is on the hot path of every step, and a synchronous counter of the
SDK hashes its attributes on every ``add``. So the counters are observable:
the process keeps its totals in a dict (one tuple lookup per event) and the
SDK reads them when it collects (every export interval). They export as
ordinary monotonic sums, cumulative or delta as the exporter prefers. The
queue delay is a synchronous histogram (OpenTelemetry has no observable
one), but recording into it costs as much as starting the attempt's span
(the SDK copies, validates and hashes the attributes, and offers an
exemplar). So a step only appends its delay to a queue (``Delays``), and the
values are recorded by the thread that collects, just before it reads the
instruments (the first counter's callback does it): every delay is in the
export it would have been in, and the step's own thread does not pay for
it. Being recorded outside the attempt, a delay has no exemplar. The breaker
state is a synchronous gauge (it changes rarely).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.util.types import AttributeValue

from orchestrator import __version__
from orchestrator import hooks as h
from orchestrator.errors import HandoffError
from orchestrator.telemetry import names as n

#: Bucket bounds (seconds) of the queue-delay histogram: log-spaced from 1 ms
#: to about 17 min, so a percentile is read to within a factor of 2.
SECONDS_BUCKETS = tuple(round(0.001 * 2**k, 6) for k in range(21))

#: Attribute sets of the queue delay kept built, per process.
MAX_SETS = 1024
#: Queue delays held for the collecting thread; more are recorded at once (no reader collects).
MAX_PENDING = 4096

_HANDED = frozenset({h.Outcome.SUCCEEDED, h.Outcome.FALLBACK})

Key = tuple[AttributeValue, ...]


class Tally:
    """A monotonic count per attribute set, read by an observable counter at collection."""

    def __init__(
        self,
        meter: metrics.Meter,
        name: str,
        unit: str,
        description: str,
        keys: Sequence[str],
        before: Callable[[], None] | None = None,
    ) -> None:
        self.keys = tuple(keys)
        self.totals: dict[Key, int] = {}
        self._lock = threading.Lock()
        self._before = before  # run at each collection, before the totals are read
        meter.create_observable_counter(name, [self._observe], unit, description)

    def add(self, *values: AttributeValue) -> None:
        """One more for the attribute values given in ``keys`` order."""
        with self._lock:
            self.totals[values] = self.totals.get(values, 0) + 1

    def _observe(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._before is not None:
            self._before()
        with self._lock:
            totals = list(self.totals.items())
        return [
            Observation(total, dict(zip(self.keys, values, strict=True)))
            for values, total in totals
        ]


class Delays:
    """Queue delays waiting to be recorded into the histogram by the collecting thread.

    ``add`` is a deque append (thread-safe, no lock); ``flush`` records what
    is pending. It runs at every collection, from an observable counter's
    callback, which the SDK calls before it reads any instrument. Should no
    reader ever collect, ``add`` records the backlog itself once it is
    ``MAX_PENDING`` long, so memory stays bounded.
    """

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._pending: deque[tuple[float, dict[str, AttributeValue]]] = deque()

    def add(self, seconds: float, attributes: dict[str, AttributeValue]) -> None:
        self._pending.append((seconds, attributes))
        if len(self._pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        pending, record = self._pending, self._histogram.record
        while pending:
            try:
                seconds, attributes = pending.popleft()
            except IndexError:  # another thread took the last one
                return
            record(seconds, attributes)


class Instruments:
    """Every instrument, once per meter provider (two hooks on one provider share them)."""

    def __init__(self, meter: metrics.Meter) -> None:
        wv = (n.WORKFLOW, n.VERSION)
        self.queue_delay = Delays(
            meter.create_histogram(
                n.QUEUE_DELAY_HISTOGRAM,
                "s",
                "From a step becoming runnable to its attempt starting",
                explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
            )
        )
        self.runs_submitted = Tally(
            meter,
            n.RUNS_SUBMITTED,
            "{run}",
            "Runs created by submit",
            wv,
            before=self.queue_delay.flush,
        )
        self.runs_finished = Tally(
            meter, n.RUNS_FINISHED, "{run}", "Runs that reached a final state", (*wv, n.STATE)
        )
        self.attempts = Tally(
            meter, n.ATTEMPTS, "{attempt}", "Step attempts, by outcome", (*wv, n.STEP, n.OUTCOME)
        )
        self.retries = Tally(
            meter,
            n.RETRIES,
            "{retry}",
            "Retries scheduled after a failed attempt",
            (*wv, n.STEP, n.REASON),
        )
        self.handoffs = Tally(
            meter, n.HANDOFFS, "{handoff}", "Handoffs across edges", (*wv, n.EDGE, n.VALID)
        )
        self.denials = Tally(
            meter,
            n.BUDGET_DENIALS,
            "{denial}",
            "Retries a retry budget refused",
            (*wv, n.DEPENDENCY),
        )
        self.waits = Tally(
            meter, n.WAITS, "{wait}", "Approval waits that ended", (*wv, n.STEP, n.OUTCOME)
        )
        self.compensations = Tally(
            meter,
            n.COMPENSATIONS,
            "{compensation}",
            "Compensation attempts, by outcome",
            (*wv, n.STEP, n.OUTCOME),
        )
        self.breaker = meter.create_gauge(
            n.BREAKER, "1", "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open"
        )


_shared: weakref.WeakKeyDictionary[metrics.MeterProvider, Instruments] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def instruments_of(provider: metrics.MeterProvider) -> Instruments:
    with _shared_lock:
        found = _shared.get(provider)
        if found is None:
            found = _shared[provider] = Instruments(provider.get_meter(n.SCOPE, __version__))
        return found


def _recording(provider: metrics.MeterProvider) -> bool:
    """Whether measurements go anywhere: a real provider is set and not disabled."""
    idle = (metrics.NoOpMeterProvider, _ProxyMeterProvider)
    if isinstance(provider, idle):
        return False
    return not isinstance(provider.get_meter(n.SCOPE, __version__), metrics.NoOpMeter)


class Metrics(h.Hooks):
    """The metrics hook. Without a real meter provider it is disabled (``enabled`` False)."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        provider = meter_provider or metrics.get_meter_provider()
        self.enabled = _recording(provider)
        if self.enabled:
            self.i = instruments_of(provider)
        self._delay_sets: dict[tuple[str, int, str], dict[str, AttributeValue]] = {}

    def on_run_submitted(self, event: h.RunSubmitted) -> None:
        if event.created:
            self.i.runs_submitted.add(event.workflow, event.version)

    def on_run_finished(self, event: h.RunFinished) -> None:
        self.i.runs_finished.add(event.workflow, event.version, event.state)

    def on_attempt_started(self, event: h.AttemptStarted) -> None:
        if event.queue_delay is not None:
            self.i.queue_delay.add(event.queue_delay, self._delay_attributes(event))

    def _delay_attributes(self, event: h.AttemptStarted) -> dict[str, AttributeValue]:
        """The queue delay's attribute set, built once per workflow version and queue."""
        key = (event.workflow, event.version, event.queue)
        found = self._delay_sets.get(key)
        if found is None:
            if len(self._delay_sets) >= MAX_SETS:
                self._delay_sets.clear()
            found = self._delay_sets[key] = {
                n.WORKFLOW: event.workflow,
                n.VERSION: event.version,
                n.QUEUE: event.queue,
            }
        return found

    def on_attempt_finished(self, event: h.AttemptFinished) -> None:
        wf, v = event.workflow, event.version
        self.i.attempts.add(wf, v, event.step, event.outcome)
        if isinstance(event.exception, HandoffError):  # a bad handoff fails naming its edge
            self.i.handoffs.add(wf, v, event.exception.edge, False)
        elif event.outcome in _HANDED:  # a step that ran was handed all its inputs
            for upstream in event.upstreams:
                self.i.handoffs.add(wf, v, f"{upstream} → {event.step}", True)

    def on_retry_scheduled(self, event: h.RetryScheduled) -> None:
        self.i.retries.add(event.workflow, event.version, event.step, event.reason)

    def on_budget_denied(self, event: h.BudgetDenied) -> None:
        self.i.denials.add(event.workflow, event.version, event.dependency)

    def on_breaker_changed(self, event: h.BreakerChanged) -> None:
        level = n.BREAKER_LEVELS.get(event.state)
        if level is not None:
            self.i.breaker.set(level, {n.DEPENDENCY: event.dependency})

    def on_wait_ended(self, event: h.WaitEnded) -> None:
        self.i.waits.add(event.workflow, event.version, event.step, event.outcome)

    def on_compensation_finished(self, event: h.CompensationFinished) -> None:
        self.i.compensations.add(event.workflow, event.version, event.step, event.outcome)
