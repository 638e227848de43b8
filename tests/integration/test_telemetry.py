"""Traces on real workers, exported by the real OTLP/HTTP exporter to a receiver the test runs.

Two worker processes (one prefork child each) set up the SDK from ``OTEL_*``
through ``ORCH_HOOKS=orchestrator.telemetry:OpenTelemetry``; the test process
is the producer, with an SDK of its own exporting to the same receiver, which
decodes the protobuf. The runs are played once (the ``played`` fixture); each
test then checks one property of the trace that came out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench.otlp import OtlpSink, Span
from orchestrator import Client, Flow, Run
from orchestrator.embedded import EmbeddedRedis
from orchestrator.telemetry import OpenTelemetry
from orchestrator.telemetry import names as n
from tests.integration.helpers import WAIT
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

QUEUE = "traced"
B, S = "tests.steps.basic", "tests.steps.saga"
ERROR = 2
INTERNAL, CONSUMER = 1, 5  # OTLP span kinds: a step a lane ran, one a message started
FAST_RETRY = {"max_attempts": 3, "initial": "50ms", "max": "100ms", "jitter": "none"}


def otel_env(sink: OtlpSink, **extra: str) -> dict[str, str]:
    return {
        "ORCH_HOOKS": "orchestrator.telemetry:OpenTelemetry",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_SERVICE_NAME": "orch-worker",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **extra,
    }


def of_run(sink: OtlpSink, run: Run) -> list[Span]:
    return [s for s in sink.spans() if s.attributes.get(n.RUN_ID) == run.id]


def wait_for(sink: OtlpSink, run: Run, name: str) -> None:
    """Until the span ``name`` of ``run`` was received (exports are batched)."""
    deadline = time.monotonic() + WAIT
    while not any(s.name == name for s in of_run(sink, run)):
        assert time.monotonic() < deadline, f"no span {name!r} received for {run.id}"
        time.sleep(0.1)


@dataclass
class Played:
    sink: OtlpSink
    wf: str
    fan: Run
    producer: Span
    approval: Run
    saga: Run
    parent: Run

    def spans(self, run: Run) -> list[Span]:
        return of_run(self.sink, run)

    def one(self, run: Run, name: str) -> Span:
        found = [s for s in self.spans(run) if s.name == name]
        assert len(found) == 1, (name, [s.name for s in self.spans(run)])
        return found[0]


@pytest.fixture(scope="module")
def played(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Played]:
    """A fan-out run, an approval run and a compensated run, traced from a producer span."""
    with OtlpSink() as sink:
        pool = WorkerPool(
            redis_server.url, log_dir=tmp_path_factory.mktemp("otel-logs"), env=otel_env(sink)
        )
        producer = TracerProvider(resource=Resource.create({"service.name": "producer"}))
        exporter = OTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces")
        producer.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
        wf = f"traced{time.time_ns() % 10**9}"
        try:
            pool.start([QUEUE], concurrency=1, processes=2)
            with Client(redis_server.url, hooks=[OpenTelemetry(tracer_provider=producer)]) as c:
                yield _play(c, sink, producer, wf)
        finally:
            pool.stop()
            producer.shutdown()


def _play(client: Client, sink: OtlpSink, producer: TracerProvider, wf: str) -> Played:
    fan = (
        Flow(f"{wf}-fan", 1)
        .step("split", f"{B}:emit", queue=QUEUE)
        .step("left", f"{B}:sleepy", after=["split"], queue=QUEUE)
        .step("right", f"{B}:sleepy", after=["split"], queue=QUEUE)
        .step("join", f"{B}:add_one", after=["left", "right"], queue=QUEUE)
        .step("tail", f"{B}:flaky", after=["join"], queue=QUEUE, retry=FAST_RETRY)
        .build()
    )
    approval = (
        Flow(f"{wf}-approval", 1)
        .step("emit", f"{B}:emit", queue=QUEUE)
        .step("review", wait_for="approval", after=["emit"], timeout="60s")
        .step("publish", f"{B}:publish", after=["review", "emit"], queue=QUEUE)
        .build()
    )
    saga = (
        Flow(f"{wf}-saga", 1)
        .step("charge", f"{S}:effect", queue=QUEUE, compensate=f"{S}:undo")
        .step("ship", f"{S}:fails", after=["charge"], queue=QUEUE)
        .build()
    )
    tracer = producer.get_tracer("tests")
    with tracer.start_as_current_span("checkout"):
        fan_run = client.submit(fan, {"delay": 0.5})
    assert fan_run.wait(WAIT)["state"] == "SUCCEEDED"
    with tracer.start_as_current_span("request approval"):
        approval_run = client.submit(approval, {"value": 3})
    _until_waiting(client, approval_run)
    time.sleep(0.3)  # a wait that lasts a while, so its span has a visible length
    client.signal(approval_run.id, "approval", {"approved": True, "by": "ana"})
    assert approval_run.wait(WAIT)["state"] == "SUCCEEDED"
    with tracer.start_as_current_span("order"):
        saga_run = client.submit(saga, {})
    assert saga_run.wait(WAIT)["state"] == "COMPENSATED"
    parent = Flow(f"{wf}-parent", 1).step("kid", workflow=fan.ref, queue=QUEUE).build()
    parent_run = client.submit(parent, {"delay": 0.1})
    assert parent_run.wait(WAIT)["state"] == "SUCCEEDED"
    producer.force_flush()
    for run, name in ((fan_run, fan.name), (approval_run, approval.name), (saga_run, saga.name)):
        wait_for(sink, run, n.run_span(name))
    wait_for(sink, parent_run, n.run_span(parent.name))
    wait_for(sink, approval_run, n.wait_span(approval.name, "review"))
    (checkout,) = [s for s in sink.spans() if s.name == "checkout"]
    return Played(sink, wf, fan_run, checkout, approval_run, saga_run, parent_run)


def _until_waiting(client: Client, run: Run) -> None:
    deadline = time.monotonic() + WAIT
    while run.status()["steps"]["review"]["state"] != "WAITING":
        assert time.monotonic() < deadline, "review never waited"
        time.sleep(0.05)


def test_one_trace_from_the_producer_span_through_the_run_to_every_step(played: Played) -> None:
    fan = played.fan
    run = played.one(fan, n.run_span(f"{played.wf}-fan"))
    attempts = [s for s in played.spans(fan) if s is not run]
    assert sorted(s.name.rsplit(".", 1)[1] for s in attempts) == [
        "join",
        "left",
        "right",
        "split",
        "tail",
        "tail",
    ]
    assert {s.trace_id for s in [run, *attempts]} == {played.producer.trace_id}
    assert run.parent_id == played.producer.span_id
    assert played.producer.resource["service.name"] == "producer"
    assert {s.parent_id for s in attempts} == {run.span_id}
    assert {s.resource["service.name"] for s in [run, *attempts]} == {"orch-worker"}
    assert run.attributes[n.STATE] == "SUCCEEDED"
    assert run.start_ns <= min(s.start_ns for s in attempts)
    assert run.end_ns >= max(s.end_ns for s in attempts)


def test_the_fan_out_ran_on_two_worker_processes_and_a_lane_joined_the_trace(
    played: Played,
) -> None:
    wf = f"{played.wf}-fan"
    left, right = played.one(played.fan, f"{wf}.left"), played.one(played.fan, f"{wf}.right")
    assert left.attributes[n.WORKER] != right.attributes[n.WORKER]
    instance = "service.instance.id"  # the SDK's resource: one per process that set it up
    assert left.resource[instance] != right.resource[instance]
    by_lane = [s for s in played.spans(played.fan) if s.kind == INTERNAL and n.STEP in s.attributes]
    assert by_lane, "no step was run by a runner lane"
    run = played.one(played.fan, n.run_span(wf))
    assert {s.parent_id for s in by_lane} == {run.span_id}
    assert {s.trace_id for s in by_lane} == {played.producer.trace_id}


def test_a_failed_attempt_is_an_error_with_its_exception(played: Played) -> None:
    tails = sorted(
        (s for s in played.spans(played.fan) if s.name.endswith(".tail")),
        key=lambda s: s.attributes[n.ATTEMPT],
    )
    failed, succeeded = tails
    assert failed.status == ERROR
    assert "transient failure on attempt 1" in failed.status_message
    assert failed.attributes[n.OUTCOME] == "retrying"
    assert failed.attributes[n.RETRY_DELAY] == pytest.approx(0.05)
    ((event, attributes),) = failed.events
    assert event == "exception"
    assert attributes["exception.type"] == "RuntimeError"
    assert "transient failure" in attributes["exception.message"]
    assert "Traceback" in attributes["exception.stacktrace"]
    assert succeeded.status != ERROR and succeeded.attributes[n.OUTCOME] == "succeeded"
    assert succeeded.attributes[n.ATTEMPT] == 2


def test_an_attempt_span_carries_its_queue_delay_queue_and_worker(played: Played) -> None:
    split = played.one(played.fan, f"{played.wf}-fan.split")
    assert split.attributes[n.QUEUE] == QUEUE
    assert split.attributes[n.QUEUE_DELAY] >= 0
    assert split.attributes[n.WORKER].startswith("orch-")
    assert split.attributes[n.STEP] == "split"
    assert split.kind == CONSUMER, "the submit's message started it"


def test_the_approval_wait_is_a_span_ended_by_the_signalling_client(played: Played) -> None:
    name = f"{played.wf}-approval"
    run = played.one(played.approval, n.run_span(name))
    wait = played.one(played.approval, n.wait_span(name, "review"))
    assert wait.resource["service.name"] == "producer", "the client that signalled emitted it"
    assert wait.parent_id == run.span_id and wait.trace_id == run.trace_id
    assert wait.end_ns - wait.start_ns >= 0.3e9
    assert wait.attributes[n.OUTCOME] == "signalled"
    publish = played.one(played.approval, f"{name}.publish")
    assert publish.start_ns >= wait.end_ns - 0.05e9


def test_a_compensation_is_a_span_of_the_run_and_the_run_span_is_an_error(
    played: Played,
) -> None:
    name = f"{played.wf}-saga"
    run = played.one(played.saga, n.run_span(name))
    undo = played.one(played.saga, n.compensation_span(name, "charge"))
    assert undo.parent_id == run.span_id
    assert undo.attributes[n.OUTCOME] == "compensated"
    assert run.status == ERROR and run.attributes[n.STATE] == "COMPENSATED"
    ship = played.one(played.saga, f"{name}.ship")
    assert ship.status == ERROR and ship.attributes[n.OUTCOME] == "failed"


def test_spans_and_metrics_buffered_in_a_pool_child_are_flushed_when_the_worker_stops(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    with OtlpSink() as sink:
        env = otel_env(
            sink,
            OTEL_BSP_SCHEDULE_DELAY="600000",  # never by the schedule: only at exit
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_METRIC_EXPORT_INTERVAL="600000",
            OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta",
        )
        pool = WorkerPool(redis_server.url, log_dir=tmp_path, env=env)
        try:
            pool.start(["flushed"], concurrency=1, processes=1)
            name = f"flushed{time.time_ns() % 10**9}"
            wf = Flow(name, 1).step("a", f"{B}:emit", queue="flushed").build()
            with Client(redis_server.url) as client:
                run = client.submit(wf, {})
                assert run.wait(WAIT)["state"] == "SUCCEEDED"
            time.sleep(0.5)
            assert of_run(sink, run) == [], "exported before the worker stopped"
        finally:
            pool.stop()
        assert [s.attributes[n.STEP] for s in of_run(sink, run)] == ["a"]
        at = {n.WORKFLOW: name, n.VERSION: 1}

        def total(metric: str, **match: object) -> float:
            points = sink.points(metric)
            wanted = {**at, **match}
            return sum(p.value for p in points if wanted.items() <= p.attributes.items())

        assert total(n.RUNS_FINISHED, **{n.STATE: "SUCCEEDED"}) == 1
        assert total(n.ATTEMPTS, **{n.STEP: "a", n.OUTCOME: "succeeded"}) == 1
        assert total(n.QUEUE_DELAY_HISTOGRAM, **{n.QUEUE: "flushed"}) == 1  # one observation


def test_a_child_run_span_is_a_child_of_the_parent_step_attempt(played: Played) -> None:
    parent = played.parent
    child = Run(parent.client, parent.status()["steps"]["kid"]["child"])
    wait_for(played.sink, child, n.run_span(f"{played.wf}-fan"))
    kid_attempts = [
        s for s in played.spans(parent) if s.name == n.attempt_span(f"{played.wf}-parent", "kid")
    ]
    child_run = played.one(child, n.run_span(f"{played.wf}-fan"))
    parent_run = played.one(parent, n.run_span(f"{played.wf}-parent"))
    assert child_run.trace_id == parent_run.trace_id  # one trace for the whole tree
    assert child_run.parent_id in {s.span_id for s in kid_attempts}
    assert {s.parent_id for s in kid_attempts} == {parent_run.span_id}
