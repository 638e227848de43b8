"""Events of one run as the engine would report them, and an SDK to record what telemetry makes.

Each ``World`` is what one process would have: its own tracer provider with
an in-memory exporter and its own meter provider with an in-memory reader,
so a test can play a run across "processes" (producer, two workers) and see
which process emitted which span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from orchestrator import hooks as h
from orchestrator.telemetry import Metrics, OpenTelemetry, Traces

WF, VERSION, RUN = "ingest", 2, "run-1"


@dataclass
class World:
    """One process's SDK: spans and metrics land in memory."""

    sampler: Sampler | None = None
    spans_out: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)

    def __post_init__(self) -> None:
        kwargs: dict[str, Any] = {} if self.sampler is None else {"sampler": self.sampler}
        self.tracer_provider = TracerProvider(**kwargs)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def traces(self) -> Traces:
        return Traces(self.tracer_provider)

    def metrics(self) -> Metrics:
        return Metrics(self.meter_provider)

    def hook(self) -> OpenTelemetry:
        return OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.spans_out.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, point) of every data point of the instrument ``name``."""
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return out


def base(context: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    return {"run_id": RUN, "workflow": WF, "version": VERSION, "context": context, **extra}


def attempt(context: Mapping[str, str], step: str = "fetch", **extra: Any) -> dict[str, Any]:
    fields = {"index": None, "attempt": 1, "worker": "w1@host", "lane": False}
    return base(context, step=step, **{**fields, **extra})


def started(context: Mapping[str, str], step: str = "fetch", **extra: Any) -> h.AttemptStarted:
    extra = {"queue": "orch", "queue_delay": 0.25, **extra}
    return h.AttemptStarted(**attempt(context, step, **extra))


def finished(context: Mapping[str, str], step: str = "fetch", **extra: Any) -> h.AttemptFinished:
    defaults = {
        "queue": "orch",
        "outcome": h.Outcome.SUCCEEDED,
        "duration": 0.5,
        "queue_delay": 0.25,
        "error": None,
        "exception": None,
    }
    return h.AttemptFinished(**attempt(context, step, **{**defaults, **extra}))


def run_finished(context: Mapping[str, str], state: str = "SUCCEEDED") -> h.RunFinished:
    error = None if state == "SUCCEEDED" else f"the run is {state}"
    return h.RunFinished(**base(context), state=state, error=error)
