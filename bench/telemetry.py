"""Scenario t: what OpenTelemetry costs, on scenario a's workload, on against off in one run.

Both sides are the orchestrator. "off" is the default pool with no hooks at
all. "on" is a second pool of the same shape started with
``ORCH_HOOKS=orchestrator.telemetry:OpenTelemetry`` and the SDK set up from
``OTEL_*``: a batch span processor and a periodic metric reader exporting
OTLP/HTTP protobuf to a receiver this process runs (``bench.otlp``), as a
collector next door would receive them. The producer carries the trace too
(its own SDK, same receiver). In the table the "orch" column is telemetry on
and the "plain" column telemetry off, so the ratio is on ÷ off.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench.harness import Harness
from bench.otlp import OtlpSink
from bench.probes import workers_cpu
from bench.report import ScenarioResult, Target
from bench.rounds import Ctx, Sample, ab, measured
from bench.workloads import Batch, chain_flow, orch_batch
from orchestrator import Client
from orchestrator.telemetry import OpenTelemetry, sdk
from workers.pool import WorkerPool

QUEUE = "bench-otel"
#: Metrics are exported every second (the SDK's default is 60 s), so their cost is in the numbers.
METRIC_INTERVAL_MS = "1000"


#: Variables the caller may set to measure another configuration (a sampler, say:
#: ``OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1``).
CALLER_MAY_SET = ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_")


def otel_env(endpoint: str) -> dict[str, str]:
    """The SDK's configuration on both sides: exporting to the local receiver, and
    the caller's sampler and batch-processor variables, if set."""
    chosen = {k: v for k, v in os.environ.items() if k.startswith(CALLER_MAY_SET)}
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": METRIC_INTERVAL_MS,
        "OTEL_SERVICE_NAME": "bench",
        **chosen,
    }


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in this process's environment for a while (the SDK reads it at set-up)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Side:
    """One side's timed batches, and the CPU its workers and the producer spent on them."""

    samples: list[Sample] = field(default_factory=list)
    worker_cpu: list[float] = field(default_factory=list)  # seconds per step
    client_cpu: list[float] = field(default_factory=list)
    redis_cpu: list[float] = field(default_factory=list)
    commands: list[float] = field(default_factory=list)  # Redis commands per step

    def timed(
        self, h: Harness, workers: Callable[[], float], batch: Callable[[], Batch], steps: int
    ) -> None:
        w0 = workers()
        sample = measured(h, batch, steps)
        self.samples.append(sample)
        self.worker_cpu.append((workers() - w0) / steps)
        self.client_cpu.append(sample.cpu["client"] / steps)
        self.redis_cpu.append(sample.cpu["redis"] / steps)
        self.commands.append(sample.commands_per_step())


def scenario_t(ctx: Ctx) -> ScenarioResult:
    runs = ctx.sizes.a_runs
    res = ScenarioResult("t", f"telemetry on vs off: {runs} runs of a 10-step chain")
    ctx.default_workers()
    h = ctx.h
    off_wf, on_wf = chain_flow(10), chain_flow(10, name="bench-otel-chain", queue=QUEUE)
    on, off = Side(), Side()
    with OtlpSink(keep=False) as sink:
        env = otel_env(sink.endpoint)
        pool = WorkerPool(
            h.url,
            log_dir=h.workdir / "logs-otel",
            env={**env, "ORCH_HOOKS": "orchestrator.telemetry:OpenTelemetry"},
        )
        h.extra_pools.append(pool)
        try:
            pool.start([QUEUE], concurrency=ctx.concurrency, processes=1)
            with environ(env):
                hook = OpenTelemetry()
            if not hook.enabled:
                raise RuntimeError("scenario t needs opentelemetry-sdk (the dev or otel extra)")
            warm = 2 * ctx.concurrency
            with Client(h.url, hooks=[hook]) as on_client:
                for client, wf in ((h.client, off_wf), (on_client, on_wf)):  # untimed warm-up
                    orch_batch(client, wf, warm, {})
                ab(
                    ctx,
                    lambda: on.timed(
                        h,
                        lambda: workers_cpu(pool.workers),
                        lambda: orch_batch(on_client, on_wf, runs, {}),
                        runs * 10,
                    ),
                    lambda: off.timed(
                        h,
                        lambda: h.cpu()["orch_workers"],
                        lambda: orch_batch(h.client, off_wf, runs, {}),
                        runs * 10,
                    ),
                )
            sdk.shutdown()  # the producer's buffered spans, while the receiver still listens
        finally:
            h.drop_pool(pool)  # workers flush at exit, to the receiver still listening
    _report(res, on, off)
    on_runs = warm + len(on.samples) * runs
    res.details.update(
        spans_received=sink.span_count,
        spans_expected=on_runs * 11,  # per run: 10 attempt spans and the run span
        otlp_requests=dict(sink.received.requests),
        otlp_bytes=sink.received.bytes,
    )
    res.notes.append(
        "on = ORCH_HOOKS=orchestrator.telemetry:OpenTelemetry with the SDK from OTEL_*: "
        "BatchSpanProcessor (SDK defaults) and metrics every "
        f"{int(METRIC_INTERVAL_MS) // 1000} s, OTLP/HTTP protobuf to a receiver in the "
        "benchmark process (one span per attempt, one per run); off = no hooks. Same pool "
        "shape, alternating rounds; the 'orch' column is on, the 'plain' column off, the "
        "ratio on ÷ off. CPU per step: /proc utime+stime of the side's worker processes "
        "(main and prefork children, export threads included) and of this process (the "
        "producer, and the receiver while it counts)."
    )
    sampler = {k: v for k, v in otel_env("").items() if k.startswith(CALLER_MAY_SET)}
    if sampler:
        res.notes.append(f"set by the caller, on both sides: {sampler}")
    return res


def _report(res: ScenarioResult, on: Side, off: Side) -> None:
    res.metric(
        "steps/s end to end, telemetry on vs off",
        "steps/s",
        "higher",
        orch=[s.rate for s in on.samples],
        plain=[s.rate for s in off.samples],
        target=Target("ratio", ">=", 0.85),
    )
    picks = (("workers", "worker_cpu"), ("producer", "client_cpu"), ("Redis", "redis_cpu"))
    for label, pick in picks:
        res.metric(
            f"{label} CPU per step, telemetry on vs off",
            "ms",
            "lower",
            orch=[v * 1000 for v in getattr(on, pick)],
            plain=[v * 1000 for v in getattr(off, pick)],
        )
    res.metric(
        "Redis commands per step, telemetry on vs off",
        "cmds",
        "lower",
        orch=on.commands,
        plain=off.commands,
    )
