"""Traces: a span per run, per step attempt, per approval wait and per compensation.

The tree of one run, wherever its parts ran::

    producer span                        (the caller's, current at submit)
    └── run {workflow}                   (emitted when the run ends)
        ├── {workflow}.{step}            (one per attempt, on the worker that ran it)
        ├── wait {workflow}.{step}       (emitted where the wait ended)
        └── compensate {workflow}.{step}

An attempt span is started at ``on_attempt_started`` and made current while
the step's code runs, so spans the step opens (an HTTP or LLM client's) are
its children; it ends at ``on_attempt_finished``, in the same process. An
attempt of a run that was not sampled, under one of the SDK's standard
parent-based samplers (which drop every span under an unsampled parent), is
not even started: the run's context is made current instead, so the step's
own spans follow the run's decision too. A wait
begins in one process and ends in another, so its span is emitted at its end,
starting ``waited`` seconds earlier (the engine measures the wait). The run
span is emitted by whichever process ends the run, with the id and start
chosen at submit (``carrier``, ``ids``).
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from contextvars import Token
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from orchestrator import __version__
from orchestrator import hooks as h
from orchestrator.telemetry import names as n
from orchestrator.telemetry.carrier import RunSpan, children_context
from orchestrator.telemetry.ids import install
from orchestrator.telemetry.resource import pin_resource

log = logging.getLogger("orchestrator.telemetry")

#: Attempt or compensation spans left open (an attempt whose end was never
#: reported, as when Redis stayed away) are ended once this many are open.
MAX_OPEN = 256
#: Runs whose parent context is kept parsed, per process.
MAX_RUNS = 1024

_FAILED = frozenset({h.Outcome.FAILED, h.Outcome.RETRYING})
_UNDO_FAILED = frozenset({h.CompensationOutcome.FAILED, h.CompensationOutcome.RETRYING})
_RUN_OK = frozenset({"SUCCEEDED", "CANCELLED"})
#: How the SDK describes its default sampler and each ``parentbased_*`` one of
#: ``OTEL_TRACES_SAMPLER``: whatever the root decides, a span whose remote
#: parent was not sampled is dropped.
_PARENT_BASED = re.compile(
    r"ParentBased\{root:(AlwaysOnSampler|AlwaysOffSampler|TraceIdRatioBased\{[^{}]*\}),"
    r"remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,"
    r"localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler\}"
)

AttemptKey = tuple[str, str, int | None, int]


@dataclass(slots=True)
class _Open:
    span: Span
    token: Token[Context] | None  # what context.attach returned, to detach at the end


def _recording(provider: trace.TracerProvider, tracer: trace.Tracer) -> bool:
    """Whether spans go anywhere: an SDK (or other) provider is set and not disabled."""
    idle = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    return not isinstance(provider, idle) and not isinstance(tracer, trace.NoOpTracer)


def _drops_unsampled_runs(tracer: trace.Tracer) -> bool:
    """Whether ``tracer`` drops every span of a run that was not sampled (see the module doc).

    Only the SDK's standard parent-based samplers are known to; any other
    sampler (a custom one may sample by step) is asked for every attempt.
    """
    describe = getattr(getattr(tracer, "sampler", None), "get_description", None)
    return describe is not None and _PARENT_BASED.fullmatch(str(describe())) is not None


class Traces(h.Hooks):
    """The tracing hook. Without a real tracer provider it is disabled (``enabled`` False).

    ``tracer_provider`` defaults to the global one at construction time, so
    build it after the SDK is set up (``OpenTelemetry`` does both).
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer(n.SCOPE, __version__)
        self.enabled = _recording(provider, self._tracer)
        self._ids = install(self._tracer) if self.enabled else None
        if self.enabled:
            pin_resource(self._tracer)
        self._skips_unsampled = self.enabled and _drops_unsampled_runs(self._tracer)
        self._runs: OrderedDict[str, tuple[Context, bool]] = OrderedDict()
        self._open: OrderedDict[tuple[str, ...] | AttemptKey, _Open] = OrderedDict()
        self._names: dict[tuple[str, str], str] = {}

    # -- the producer ---------------------------------------------------------------

    def propagate(self) -> dict[str, str]:
        if not self.enabled:
            return {}
        return RunSpan.begin(self._tracer, self._ids).carrier()

    # -- attempts ---------------------------------------------------------------------

    def on_attempt_started(self, event: h.AttemptStarted) -> None:
        parent, unsampled = self._run_context(event)
        if unsampled and self._skips_unsampled:  # the span would be dropped: start none
            self._hold(_key(event), _Open(trace.INVALID_SPAN, otel_context.attach(parent)))
            return
        name = self._attempt_name(event)
        kind = _kind(event.lane)
        self._start(_key(event), name, parent, _attempt_attributes(event), kind)

    def on_attempt_finished(self, event: h.AttemptFinished) -> None:
        opened = self._open.pop(_key(event), None)
        if opened is not None and opened.span is trace.INVALID_SPAN:
            _end(opened)
            return
        if opened is None:  # its start was not seen here: rebuild it from the duration
            span = self._tracer.start_span(
                self._attempt_name(event),
                context=self._parent(event),
                kind=_kind(event.lane),
                attributes=_attempt_attributes(event),
                start_time=time.time_ns() - int(event.duration * 1e9),
            )
            opened = _Open(span, None)
        span = opened.span
        span.set_attribute(n.OUTCOME, event.outcome)
        if event.retry_delay is not None or event.breaker is not None:
            span.set_attributes(_finish_attributes(event))
        if event.outcome in _FAILED:
            span.set_status(Status(StatusCode.ERROR, event.error))
            if event.exception is not None:
                span.record_exception(event.exception)
        _end(opened)

    # -- compensations ----------------------------------------------------------------

    def on_compensation_started(self, event: h.CompensationStarted) -> None:
        attributes: dict[str, AttributeValue] = {
            **_run_attributes(event),
            n.STEP: event.step,
            n.ATTEMPT: event.attempt,
            n.WORKER: event.worker,
        }
        name = n.compensation_span(event.workflow, event.step)
        self._start(_undo_key(event), name, self._parent(event), attributes, SpanKind.CONSUMER)

    def on_compensation_finished(self, event: h.CompensationFinished) -> None:
        opened = self._open.pop(_undo_key(event), None)
        if opened is None:
            return
        opened.span.set_attribute(n.OUTCOME, event.outcome)
        if event.outcome in _UNDO_FAILED:
            opened.span.set_status(Status(StatusCode.ERROR, event.error))
            if event.error:
                kind, _, message = event.error.partition(": ")
                opened.span.add_event(
                    "exception", {"exception.type": kind, "exception.message": message}
                )
        _end(opened)

    # -- waits and the run ---------------------------------------------------------------

    def on_wait_ended(self, event: h.WaitEnded) -> None:
        end = time.time_ns()
        start = end - int(event.waited * 1e9) if event.waited is not None else end
        attributes: dict[str, AttributeValue] = {
            **_run_attributes(event),
            n.STEP: event.step,
            n.SIGNAL: event.signal,
            n.OUTCOME: event.outcome,
        }
        if event.waited is not None:
            attributes[n.WAITED] = event.waited
        span = self._tracer.start_span(
            n.wait_span(event.workflow, event.step),
            context=self._parent(event),
            attributes=attributes,
            start_time=start,
        )
        if event.outcome == h.WaitOutcome.TIMED_OUT:
            span.set_status(Status(StatusCode.ERROR, f"no signal {event.signal!r} in time"))
        span.end(end_time=end)

    def on_run_finished(self, event: h.RunFinished) -> None:
        self._runs.pop(event.run_id, None)
        run = RunSpan.of(event.context)
        if run is None or not run.sampled or self._ids is None:
            return
        with self._ids.preset(run.span.trace_id, run.span.span_id):
            span = self._tracer.start_span(
                n.run_span(event.workflow),
                context=run.parent_context(),
                attributes={**_run_attributes(event), n.STATE: event.state},
                start_time=run.start_ns,
            )
        if span.get_span_context().span_id != run.span.span_id:
            log.warning("the run span of %s did not keep its preset id", event.run_id)
        if event.state not in _RUN_OK:
            span.set_status(Status(StatusCode.ERROR, event.error or event.state))
        span.end()

    # -- bookkeeping -----------------------------------------------------------------------

    def _attempt_name(self, event: h.AttemptEvent) -> str:
        """The attempt span's name, formatted once per workflow and step."""
        key = (event.workflow, event.step)
        name = self._names.get(key)
        if name is None:
            if len(self._names) >= MAX_RUNS:
                self._names.clear()
            name = self._names[key] = n.attempt_span(event.workflow, event.step)
        return name

    def _parent(self, event: h.RunEvent) -> Context:
        """The run span as parent (parsed once per run and process)."""
        return self._run_context(event)[0]

    def _run_context(self, event: h.RunEvent) -> tuple[Context, bool]:
        """The run span as parent, and whether the run carries a trace that was not sampled
        (once per run and process). A run that carries none is a root for the sampler."""
        found = self._runs.get(event.run_id)
        if found is None:
            parent = children_context(event.context)
            span = trace.get_current_span(parent).get_span_context()
            found = self._runs[event.run_id] = (
                parent,
                span.is_valid and not span.trace_flags.sampled,
            )
            if len(self._runs) > MAX_RUNS:
                self._runs.popitem(last=False)
        return found

    def _start(
        self,
        key: tuple[str, ...] | AttemptKey,
        name: str,
        parent: Context,
        attributes: dict[str, AttributeValue],
        kind: SpanKind,
    ) -> None:
        """Start a span and make it current until its end is reported."""
        span = self._tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
        self._hold(key, _Open(span, otel_context.attach(trace.set_span_in_context(span, parent))))

    def _hold(self, key: tuple[str, ...] | AttemptKey, opened: _Open) -> None:
        """Keep what was made current until the end of ``key`` is reported."""
        stale = self._open.pop(key, None)
        if stale is not None:
            _end(stale, abandoned=True)
        self._open[key] = opened
        while len(self._open) > MAX_OPEN:
            _end(self._open.popitem(last=False)[1], abandoned=True)


def _end(opened: _Open, *, abandoned: bool = False) -> None:
    """End a span, and stop it being current (an abandoned one is left as it is).

    Contexts are detached last in, first out; an abandoned span's context is
    under newer ones, so detaching it would drop those too.
    """
    if abandoned:
        opened.span.set_status(Status(StatusCode.ERROR, "its end was never reported"))
    opened.span.end()
    if opened.token is not None and not abandoned:
        otel_context.detach(opened.token)


def _kind(lane: bool) -> SpanKind:
    """A step a Celery message started consumed it; one a lane ran continues the previous one."""
    return SpanKind.INTERNAL if lane else SpanKind.CONSUMER


def _key(event: h.AttemptEvent) -> AttemptKey:
    return (event.run_id, event.step, event.index, event.attempt)


def _undo_key(event: h.CompensationStarted | h.CompensationFinished) -> tuple[str, ...]:
    return ("undo", event.run_id, event.step, str(event.attempt))


def _run_attributes(event: h.RunEvent) -> dict[str, AttributeValue]:
    return {n.RUN_ID: event.run_id, n.WORKFLOW: event.workflow, n.VERSION: event.version}


def _attempt_attributes(event: h.AttemptStarted | h.AttemptFinished) -> dict[str, AttributeValue]:
    """What an attempt span says at its start.

    Every attribute costs on every step (validated when set, encoded when
    exported), so an attempt span says only what is its own: the workflow is
    in its name and its version on the run span; attributes that are mostly
    empty are set only when they say something; and whether a runner lane ran
    it is its kind (INTERNAL, against CONSUMER for a step a message started).
    """
    attributes: dict[str, AttributeValue] = {
        n.RUN_ID: event.run_id,
        n.STEP: event.step,
        n.ATTEMPT: event.attempt,
        n.QUEUE: event.queue,
        n.WORKER: event.worker,
    }
    if event.queue_delay is not None:
        attributes[n.QUEUE_DELAY] = event.queue_delay
    if event.index is not None:
        attributes[n.INDEX] = event.index
    if event.dependency:
        attributes[n.DEPENDENCY] = event.dependency
    return attributes


def _finish_attributes(event: h.AttemptFinished) -> dict[str, AttributeValue]:
    """What an attempt span learns at its end besides its outcome, when it applies."""
    attributes: dict[str, AttributeValue] = {}
    if event.retry_delay is not None:
        attributes[n.RETRY_DELAY] = event.retry_delay
    if event.breaker is not None:
        attributes[n.BREAKER_STATE] = event.breaker
    return attributes
