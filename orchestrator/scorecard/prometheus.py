"""The scorecard as a Prometheus scrape endpoint: `orch worker --metrics-port`, `orch dev`.

The figures live in Redis, shared by every worker, so any one process can
serve them all: a scrape reads the scorecard of every version that ran, over
the last hour, and reports it as gauges. Nothing is kept in the process, so
there is no per-process state to aggregate (Prometheus's usual trouble with
prefork workers) and a worker that restarts loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.scorecard.model import Figures
    from orchestrator.store.reads import RunReader

WINDOW = "1h"

#: (metric name, help, how to read it off the figures)
GAUGES: tuple[tuple[str, str, str], ...] = (
    ("orch_scorecard_runs", "Runs that ended in the window.", "runs"),
    ("orch_scorecard_success_ratio", "Succeeded runs / runs that ended.", "success_rate"),
    ("orch_scorecard_retry_burden_ratio", "Retried attempts / first attempts.", "retry_burden"),
    (
        "orch_scorecard_failed_attempt_seconds",
        "Seconds spent in failed attempts.",
        "failed_seconds",
    ),
    ("orch_scorecard_handoff_accuracy_ratio", "Valid handoffs / all.", "handoff_accuracy"),
    ("orch_scorecard_compensation_ratio", "Runs that compensated / runs.", "compensation_rate"),
    (
        "orch_scorecard_compensations_failed",
        "Compensations failed for good.",
        "compensations_failed",
    ),
    ("orch_scorecard_branch_coverage_ratio", "Plan edges taken / all edges.", "coverage"),
)


class ScorecardCollector:
    """A prometheus_client collector that reads the scorecard at each scrape."""

    def __init__(self, reads: RunReader) -> None:
        self.reads = reads

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        from orchestrator.scorecard.report import Builder, window_seconds  # noqa: PLC0415

        # Only versions with a run submitted or ended within the window: a scrape reads
        # each version's minutes, and older versions have no success rate to report.
        scores = self.reads.scores
        since = scores.now() - window_seconds(WINDOW)
        card = Builder(scores, self.reads.shape).build(
            sorted(scores.active(since)), WINDOW, "minute"
        )
        labels = ["workflow", "version", "window"]
        families = {name: GaugeMetricFamily(name, doc, labels=labels) for name, doc, _ in GAUGES}
        delay = GaugeMetricFamily(
            "orch_scorecard_queue_delay_seconds",
            "Queue delay, runnable to started, by quantile.",
            labels=[*labels, "queue", "quantile"],
        )
        for v in card.versions:
            ident = [v.workflow, str(v.version), WINDOW]
            for name, _, attr in GAUGES:
                value = getattr(v.current, attr)
                if value is not None:
                    families[name].add_metric(ident, float(value))
            _delays(delay, ident, v.current)
        yield from families.values()
        yield delay


class QueueCollector:
    """Queue depth, oldest item's age, backlogs and admission refusals, read at each scrape."""

    def __init__(self, reads: RunReader, default_queue: str = "orch") -> None:
        self.reads = reads
        self.default_queue = default_queue

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        from orchestrator.queueview import queue_document  # noqa: PLC0415

        doc = queue_document(self.reads, self.default_queue)
        where = ["queue", "priority", "fairness_key", "held"]
        depth = GaugeMetricFamily("orch_queue_depth", "Messages waiting.", labels=where)
        age = GaugeMetricFamily(
            "orch_queue_oldest_age_seconds", "Age of the oldest message waiting.", labels=where
        )
        for row in doc["queues"]:
            ident = [row["queue"], str(row["priority"]), row["fairness_key"] or "",
                     "1" if row["held"] else "0"]  # fmt: skip
            depth.add_metric(ident, float(row["depth"]))
            if row["oldest_age"] is not None:
                age.add_metric(ident, row["oldest_age"])
        backlog = GaugeMetricFamily(
            "orch_backlog_runs",
            "Runs accepted and not started.",
            labels=["workflow", "fairness_key"],
        )
        for row in doc["backlogs"]:
            backlog.add_metric([row["workflow"], row["fairness_key"] or ""], float(row["waiting"]))
        held = GaugeMetricFamily(
            "orch_concurrency_waiting_runs",
            "Runs waiting for a slot of a concurrency key.",
            labels=["workflow", "key"],
        )
        for row in doc["concurrency"]:
            held.add_metric([row["workflow"], row["key"]], float(row["waiting"]))
        refused = CounterMetricFamily(
            "orch_admission_refused",
            "Submits refused by admission control.",
            labels=["workflow", "fairness_key"],
        )
        for name, count in doc["refused"].items():
            workflow, _, key = name.partition(":")
            refused.add_metric([workflow, key], float(count))
        yield from (depth, age, backlog, held, refused)


def _delays(family: Any, ident: list[str], figures: Figures) -> None:
    for q in figures.queue_delay:
        for quantile, value in (("0.5", q.p50), ("0.95", q.p95), ("0.99", q.p99)):
            if value is not None:
                family.add_metric([*ident, q.queue, quantile], value)


def serve(
    port: int, reads: RunReader, address: str = "0.0.0.0", default_queue: str = "orch"
) -> Any:
    """Serve ``/metrics`` on ``port`` from a thread; returns the server (``shutdown()`` stops)."""
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScorecardCollector(reads))
    registry.register(QueueCollector(reads, default_queue))
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server
