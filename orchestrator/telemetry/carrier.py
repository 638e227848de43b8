"""The run span's identity, fixed at submit and carried with the run through Redis.

``propagate()`` (on the producer, just before a submit) decides who the run
span is: its trace is the producer's current trace (a fresh one when there is
none), its span id is new, its parent is the producer's current span, and it
starts now. That identity is written into the run's context as the standard
propagation headers of the *run span* (W3C ``traceparent``/``tracestate``, and
``baggage``, or whatever ``OTEL_PROPAGATORS`` chose), plus two of our own:
``orch-run-start`` (the start, in ns since the epoch) and ``orch-run-parent``
(the producer span's id). Every process that works on the run gets the same
mapping back as ``event.context``: step spans extract their parent from it,
and the process that ends the run rebuilds the run span from it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from orchestrator.telemetry.ids import PresetIds, source

START = "orch-run-start"
PARENT = "orch-run-parent"

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


@dataclass(frozen=True, slots=True)
class RunSpan:
    """Who the run span is: its span context, its parent's span id, its start."""

    span: SpanContext
    parent: int | None  # the producer's span; None when the run span is a root
    start_ns: int

    @classmethod
    def begin(cls, tracer: object, ids: PresetIds | None) -> RunSpan:
        """A run span that continues the current context (the producer's span, if any)."""
        current = trace.get_current_span().get_span_context()
        fresh = source(ids)
        span_id = fresh.generate_span_id()
        if current.is_valid:
            span = SpanContext(
                current.trace_id,
                span_id,
                is_remote=True,
                trace_flags=current.trace_flags,
                trace_state=current.trace_state,
            )
            return cls(span, current.span_id, time.time_ns())
        trace_id = fresh.generate_trace_id()
        span = SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=_root_flags(tracer, trace_id)
        )
        return cls(span, None, time.time_ns())

    @property
    def sampled(self) -> bool:
        return self.span.trace_flags.sampled

    def carrier(self) -> dict[str, str]:
        """The string pairs to carry with the run (the current baggage goes along)."""
        out: dict[str, str] = {}
        propagate.inject(out, context=trace.set_span_in_context(NonRecordingSpan(self.span)))
        out[START] = str(self.start_ns)
        if self.parent is not None:
            out[PARENT] = format(self.parent, "016x")
        return out

    @classmethod
    def of(cls, carrier: Mapping[str, str]) -> RunSpan | None:
        """The run span a run's context names; None when the producer carried none."""
        start = carrier.get(START)
        if start is None:
            return None
        span = trace.get_current_span(propagate.extract(carrier)).get_span_context()
        parent = carrier.get(PARENT)
        try:
            parent_id = int(parent, 16) if parent else None
            start_ns = int(start)
        except ValueError:
            return None
        return cls(span, parent_id, start_ns) if span.is_valid else None

    def parent_context(self) -> Context:
        """The context to start the run span in: under the producer's span, or a root."""
        if self.parent is None:
            return Context()
        producer = SpanContext(
            self.span.trace_id,
            self.parent,
            is_remote=True,
            trace_flags=self.span.trace_flags,
            trace_state=self.span.trace_state,
        )
        return trace.set_span_in_context(NonRecordingSpan(producer), Context())


def children_context(carrier: Mapping[str, str]) -> Context:
    """The context step spans start in: the run span as remote parent, and the baggage."""
    return propagate.extract(carrier)


def _root_flags(tracer: object, trace_id: int) -> TraceFlags:
    """Whether a run that starts a trace is sampled: its tracer's sampler says (SDK), else yes.

    Asked now, because the steps inherit the decision long before the run
    span itself is started; a sampler that decides by trace id (the SDK's)
    says the same again when it is.
    """
    sampler = getattr(tracer, "sampler", None)
    if sampler is None:
        return _SAMPLED
    result = sampler.should_sample(None, trace_id, "run")
    return _SAMPLED if result.decision.is_sampled() else _NOT_SAMPLED
