"""Trace hooks with the real SDK and in-memory exporters: one trace per run, across processes.

Each ``World`` stands for one process (its own tracer provider), so these
tests play a run the way the engine spreads it: the producer submits, steps
run on two workers, a third process ends the run, and every span must still
hang from the right parent.
"""

from __future__ import annotations

import time

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import SpanKind, StatusCode

from orchestrator import hooks as h
from orchestrator.errors import HandoffError
from orchestrator.telemetry import names as n
from orchestrator.telemetry.carrier import PARENT, START, RunSpan
from tests.unit.telemetry_events import RUN, WF, World, base, finished, run_finished, started


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    return span.get_span_context().span_id


def test_one_trace_from_the_producer_span_through_steps_on_two_workers() -> None:
    producer, worker1, worker2, ender = World(), World(), World(), World()
    with producer.tracer_provider.get_tracer("app").start_as_current_span("request") as request:
        before = time.time_ns()
        carried = producer.traces().propagate()
    assert carried["traceparent"].startswith("00-")
    assert int(carried[PARENT], 16) == request.get_span_context().span_id
    on1, on2 = worker1.traces(), worker2.traces()
    on1.on_attempt_started(started(carried, "fetch"))
    on1.on_attempt_finished(finished(carried, "fetch"))
    on2.on_attempt_started(started(carried, "embed", lane=True))
    on2.on_attempt_finished(finished(carried, "embed", lane=True))
    ender.traces().on_run_finished(run_finished(carried))

    req = producer.span("request")
    run = ender.span(n.run_span(WF))
    fetch, embed = worker1.span(f"{WF}.fetch"), worker2.span(f"{WF}.embed")
    trace_id = req.get_span_context().trace_id
    assert {s.get_span_context().trace_id for s in (run, fetch, embed)} == {trace_id}
    assert parent_id(run) == span_id(req)
    assert parent_id(fetch) == parent_id(embed) == span_id(run)
    assert run.parent is not None and run.parent.is_remote
    assert run.start_time is not None and before <= run.start_time <= fetch.start_time
    assert run.attributes is not None and run.attributes[n.STATE] == "SUCCEEDED"
    assert run.status.status_code is StatusCode.UNSET
    assert embed.kind is SpanKind.INTERNAL, "a lane ran it"
    assert fetch.kind is SpanKind.CONSUMER, "a message started it"


def test_a_run_submitted_outside_any_span_starts_its_own_trace() -> None:
    producer, worker = World(), World()
    carried = producer.traces().propagate()
    assert PARENT not in carried
    hook = worker.traces()
    hook.on_attempt_started(started(carried))
    hook.on_attempt_finished(finished(carried))
    hook.on_run_finished(run_finished(carried, "FAILED"))
    run, step = worker.span(n.run_span(WF)), worker.span(f"{WF}.fetch")
    assert run.parent is None
    assert parent_id(step) == span_id(run)
    assert step.get_span_context().trace_id == run.get_span_context().trace_id
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "the run is FAILED"


def test_the_preset_id_goes_to_the_run_span_only() -> None:
    world = World()
    with world.tracer_provider.get_tracer("app").start_as_current_span("request"):
        carried = world.traces().propagate()
    hook = world.traces()
    expected = RunSpan.of(carried)
    assert expected is not None
    hook.on_run_finished(run_finished(carried))
    hook.on_attempt_started(started(carried))
    hook.on_attempt_finished(finished(carried))
    assert span_id(world.span(n.run_span(WF))) == expected.span.span_id
    assert span_id(world.span(f"{WF}.fetch")) != expected.span.span_id


def test_attempt_spans_carry_the_attempts_facts() -> None:
    world = World()
    carried = world.traces().propagate()
    hook = world.traces()
    hook.on_attempt_started(started(carried, index=3, attempt=2, dependency="llm"))
    hook.on_attempt_finished(
        finished(
            carried,
            index=3,
            attempt=2,
            dependency="llm",
            outcome=h.Outcome.RETRYING,
            error="TimeoutError: slow",
            exception=TimeoutError("slow"),
            retry_delay=1.5,
            breaker="open",
        )
    )
    span = world.span(f"{WF}.fetch")
    assert dict(span.attributes or {}) == {
        n.RUN_ID: RUN,
        n.STEP: "fetch",
        n.ATTEMPT: 2,
        n.INDEX: 3,
        n.QUEUE: "orch",
        n.WORKER: "w1@host",
        n.DEPENDENCY: "llm",
        n.QUEUE_DELAY: 0.25,
        n.OUTCOME: "retrying",
        n.RETRY_DELAY: 1.5,
        n.BREAKER_STATE: "open",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "TimeoutError: slow"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "TimeoutError"
    assert event.attributes["exception.message"] == "slow"


def test_a_bad_handoff_is_an_error_with_its_exception() -> None:
    world = World()
    carried = world.traces().propagate()
    hook = world.traces()
    error = HandoffError("handoff fetch → embed: not a list", edge="fetch → embed")
    hook.on_attempt_started(started(carried, "embed"))
    hook.on_attempt_finished(
        finished(carried, "embed", outcome=h.Outcome.FAILED, error=str(error), exception=error)
    )
    span = world.span(f"{WF}.embed")
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.type"] == "orchestrator.errors.HandoffError"


def test_a_succeeded_or_fallback_attempt_is_not_an_error() -> None:
    world = World()
    carried = world.traces().propagate()
    hook = world.traces()
    for step, outcome in (("a", h.Outcome.SUCCEEDED), ("b", h.Outcome.FALLBACK)):
        hook.on_attempt_started(started(carried, step))
        hook.on_attempt_finished(finished(carried, step, outcome=outcome))
    assert [s.status.status_code for s in world.spans()] == [StatusCode.UNSET] * 2
    assert [s.events for s in world.spans()] == [(), ()]


def test_the_attempt_span_is_current_while_the_step_runs() -> None:
    world = World()
    with world.tracer_provider.get_tracer("app").start_as_current_span("request"):
        ctx = baggage.set_baggage("tenant", "acme")
        token = otel_context.attach(ctx)
        carried = world.traces().propagate()
        otel_context.detach(token)
    assert "baggage" in carried
    hook = world.traces()
    outside = trace.get_current_span()
    hook.on_attempt_started(started(carried))
    with world.tracer_provider.get_tracer("llm").start_as_current_span("llm.call"):
        seen_baggage = baggage.get_baggage("tenant")
    hook.on_attempt_finished(finished(carried))
    assert trace.get_current_span() is outside
    assert seen_baggage == "acme"
    assert parent_id(world.span("llm.call")) == span_id(world.span(f"{WF}.fetch"))


def test_an_attempt_whose_start_was_not_seen_is_rebuilt_from_its_duration() -> None:
    world = World()
    carried = world.traces().propagate()
    world.traces().on_attempt_finished(finished(carried, duration=2.0))
    span = world.span(f"{WF}.fetch")
    assert span.end_time is not None and span.start_time is not None
    assert 1.9e9 <= span.end_time - span.start_time <= 2.5e9
    assert span.attributes is not None and span.attributes[n.OUTCOME] == "succeeded"


def test_a_wait_span_spans_the_wait_and_hangs_from_the_run() -> None:
    world = World()
    carried = world.traces().propagate()
    hook = world.traces()
    wait = {"step": "approve", "signal": "approved"}
    hook.on_wait_ended(h.WaitEnded(**base(carried), **wait, outcome="timed_out", waited=30.0))
    hook.on_run_finished(run_finished(carried, "FAILED"))
    span = world.span(n.wait_span(WF, "approve"))
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time - span.start_time == 30 * 10**9
    assert parent_id(span) == span_id(world.span(n.run_span(WF)))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes[n.SIGNAL] == "approved"
    assert span.attributes[n.WAITED] == 30.0


def test_a_compensation_span_records_its_failure() -> None:
    world = World()
    carried = world.traces().propagate()
    hook = world.traces()
    ident = {**base(carried), "step": "charge", "attempt": 1}
    hook.on_compensation_started(h.CompensationStarted(**ident, worker="w1@host"))
    hook.on_compensation_finished(
        h.CompensationFinished(
            **ident, outcome="failed", duration=0.1, error="RuntimeError: refund refused"
        )
    )
    span = world.span(n.compensation_span(WF, "charge"))
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes[n.OUTCOME] == "failed"
    (event,) = span.events
    assert event.attributes is not None
    assert dict(event.attributes) == {
        "exception.type": "RuntimeError",
        "exception.message": "refund refused",
    }
    assert span.parent is not None and span.parent.is_remote


def test_an_unsampled_producer_trace_records_nothing_downstream() -> None:
    producer, worker = World(sampler=ALWAYS_OFF), World()
    with producer.tracer_provider.get_tracer("app").start_as_current_span("request"):
        carried = producer.traces().propagate()
    assert int(carried["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0  # not sampled
    hook = worker.traces()
    outside = trace.get_current_span()
    hook.on_attempt_started(started(carried))
    current = trace.get_current_span().get_span_context()
    with worker.tracer_provider.get_tracer("llm").start_as_current_span("llm.call") as call:
        assert not call.is_recording(), "the step's own spans follow the run's decision"
    hook.on_attempt_finished(finished(carried))
    hook.on_run_finished(run_finished(carried))
    assert worker.spans() == []
    assert format(current.trace_id, "032x") in carried["traceparent"], "the run's trace"
    assert not current.trace_flags.sampled
    assert trace.get_current_span() is outside


def test_a_sampler_that_is_not_parent_based_decides_each_attempt_itself() -> None:
    producer, worker = World(sampler=ALWAYS_OFF), World(sampler=ALWAYS_ON)
    with producer.tracer_provider.get_tracer("app").start_as_current_span("request"):
        carried = producer.traces().propagate()
    hook = worker.traces()
    hook.on_attempt_started(started(carried))
    hook.on_attempt_finished(finished(carried))
    span = worker.span(f"{WF}.fetch")
    assert format(span.get_span_context().trace_id, "032x") in carried["traceparent"]


def test_a_run_without_a_carried_trace_has_step_spans_and_no_run_span() -> None:
    world = World()
    hook = world.traces()
    hook.on_attempt_started(started({}))
    hook.on_attempt_finished(finished({}))
    hook.on_run_finished(run_finished({}))
    assert [s.name for s in world.spans()] == [f"{WF}.fetch"]
    assert world.spans()[0].parent is None


def test_the_carrier_round_trips_and_refuses_garbage() -> None:
    world = World()
    with world.tracer_provider.get_tracer("app").start_as_current_span("request"):
        carried = world.traces().propagate()
    run = RunSpan.of(carried)
    assert run is not None and run.sampled
    assert RunSpan.of(run.carrier()) == run
    assert RunSpan.of({**carried, START: "soon"}) is None
    assert RunSpan.of({**carried, "traceparent": "00-garbage"}) is None
    assert RunSpan.of({k: v for k, v in carried.items() if k != START}) is None


def test_our_spans_and_the_applications_share_one_resource_in_an_otlp_export() -> None:
    """Our tracer's resource is pinned (its hash kept): equal to the provider's, grouped with it."""
    world = World()
    carried = world.traces().propagate()
    ours = world.traces()
    ours.on_attempt_started(started(carried, "fetch"))
    ours.on_attempt_finished(finished(carried, "fetch"))
    world.tracer_provider.get_tracer("app").start_span("request").end()

    fetch, request = world.span(f"{WF}.fetch"), world.span("request")
    assert fetch.resource is not request.resource, "ours is pinned"
    assert fetch.resource == request.resource
    assert hash(fetch.resource) == hash(request.resource)
    exported = encode_spans([fetch, request])
    assert len(exported.resource_spans) == 1
    scopes = {s.scope.name: len(s.spans) for s in exported.resource_spans[0].scope_spans}
    assert scopes == {n.SCOPE: 1, "app": 1}
