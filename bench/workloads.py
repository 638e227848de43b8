"""The workloads, written twice: as orchestrator workflows and as plain Celery canvas.

Each pair does the same work with the same step bodies (no-ops, or sleeps),
so a difference in time is the difference in how the two sides move work
between steps. Canvas objects are built fresh for every run: a Celery chain
object freezes its task ids the first time it is sent, so sending it again
would reuse them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, chain, chord, group
from celery.result import AsyncResult

from orchestrator import Client, Flow, Run, RunState, Workflow

WAIT = 180.0  # seconds a batch may take before the benchmark gives up on it
STEP = "bench.steps"


# -- orchestrator workflows ----------------------------------------------------


def chain_flow(n: int = 10, *, name: str = "bench-chain", queue: str | None = None) -> Workflow:
    """``s0 → s1 → … → s{n-1}``, every step a no-op."""
    extra = {"queue": queue} if queue else {}
    f = Flow(f"{name}{n}", 1).step("s0", f"{STEP}:noop", **extra)
    for i in range(1, n):
        f.step(f"s{i}", f"{STEP}:noop", after=[f"s{i - 1}"], **extra)
    return f.build()


def fan_flow(width: int = 100) -> Workflow:
    """A root, ``width`` parallel no-ops after it, and one join after all of them."""
    f = Flow(f"bench-fan{width}", 1).step("root", f"{STEP}:noop")
    branches = [f"f{i:03d}" for i in range(width)]
    for b in branches:
        f.step(b, f"{STEP}:noop", after=["root"])
    return f.step("join", f"{STEP}:noop", after=branches).build()


def dag_flow() -> Workflow:
    """a→c, a→d, b→d, b→e: not series-parallel, so canvas needs a barrier for it."""
    return (
        Flow("bench-dag", 1)
        .step("a", f"{STEP}:nap_a")
        .step("b", f"{STEP}:nap_b")
        .step("c", f"{STEP}:nap_c", after=["a"])
        .step("d", f"{STEP}:nap_d", after=["a", "b"])
        .step("e", f"{STEP}:nap_e", after=["b"])
        .build()
    )


def map_flow() -> Workflow:
    """``seq`` returns ``list(range(n))``; ``each`` runs a no-op per element."""
    return (
        Flow("bench-map", 1)
        .step("seq", f"{STEP}:seq")
        .step("each", f"{STEP}:noop", map="seq")
        .build()
    )


def single_flow(queue: str) -> Workflow:
    return Flow("bench-single", 1).step("only", f"{STEP}:noop", queue=queue).build()


# -- plain canvas ----------------------------------------------------------------


def _noop(app: Celery) -> Any:
    return app.signature("bench.noop", immutable=True)


def _sleep(app: Celery, seconds: float) -> Any:
    return app.signature("bench.sleep", kwargs={"seconds": seconds}, immutable=True)


def plain_chain(app: Celery, n: int = 10) -> Any:
    return chain(*[_noop(app) for _ in range(n)])


def plain_chord(app: Celery, width: int = 100) -> Any:
    return chord(group([_noop(app) for _ in range(width)]), app.signature("bench.noop"))


def plain_dag(app: Celery, sleeps: dict[str, float]) -> Any:
    """Canvas's best for the DAG: a barrier between the two layers."""
    first = group(_sleep(app, sleeps["a"]), _sleep(app, sleeps["b"]))
    return first | group([_sleep(app, sleeps[s]) for s in ("c", "d", "e")])


def plain_group(app: Celery, n: int) -> Any:
    return group([_noop(app) for _ in range(n)])


# -- running batches -------------------------------------------------------------


@dataclass
class Batch:
    """A batch of runs submitted together: wall time, and per-run submit times."""

    wall: float
    submitted: list[float] = field(default_factory=list)
    orch_runs: list[Run] = field(default_factory=list)
    plain_results: list[AsyncResult] = field(default_factory=list)


def orch_batch(client: Client, wf: Workflow, n: int, run_input: dict[str, Any]) -> Batch:
    """Submit ``n`` runs, then wait for all; every run must succeed."""
    submitted: list[float] = []
    runs: list[Run] = []
    t0 = time.perf_counter()
    for _ in range(n):
        submitted.append(time.time())
        runs.append(client.submit(wf, run_input))
    for run in runs:
        check_orch(run, run.wait(WAIT))
    return Batch(time.perf_counter() - t0, submitted, orch_runs=runs)


def plain_batch(make: Callable[[], Any], n: int) -> Batch:
    """Send ``n`` fresh canvases, then ``get()`` every result."""
    submitted: list[float] = []
    results: list[AsyncResult] = []
    t0 = time.perf_counter()
    for _ in range(n):
        submitted.append(time.time())
        results.append(make().apply_async())
    for res in results:
        res.get(timeout=WAIT)
    return Batch(time.perf_counter() - t0, submitted, plain_results=results)


def check_orch(run: Run, doc: dict[str, Any]) -> None:
    if doc["state"] != RunState.SUCCEEDED:
        raise RuntimeError(f"benchmark run {run.id} ended {doc['state']}: {doc['error']}")


# -- latency from the record ----------------------------------------------------


def step_times(events: Sequence[dict[str, Any]], to: str) -> dict[str, float]:
    """When each step (first) entered state ``to``, from the run's event history."""
    out: dict[str, float] = {}
    for ev in events:
        step = ev.get("step")
        if step is not None and ev.get("to") == to and step not in out:
            out[step] = float(ev["t"])
    return out


def chain_hops(events: Sequence[dict[str, Any]], n: int) -> dict[str, list[float]]:
    """Per-hop times of one chain run, in seconds.

    ``hop``: s{i} RUNNING → s{i+1} RUNNING (all of one hop: the step, its
    complete script, the broker, the next claim). ``queue``: QUEUED → RUNNING
    (broker delivery and claim). ``dispatch``: SUCCEEDED → next QUEUED (the
    complete script queues the successor in the same call, so this is ~0).
    """
    running, queued, done = (step_times(events, s) for s in ("RUNNING", "QUEUED", "SUCCEEDED"))
    names = [f"s{i}" for i in range(n)]
    return {
        "hop": [running[b] - running[a] for a, b in itertools.pairwise(names)],
        "queue": [running[s] - queued[s] for s in names],
        "dispatch": [queued[b] - done[a] for a, b in itertools.pairwise(names)],
        "step": [done[s] - running[s] for s in names],
    }


def plain_done(res: AsyncResult) -> float:
    """When a plain task's result was stored (worker clock = this machine's clock)."""
    done = res.date_done
    if done is None:
        res.get(timeout=WAIT)
        done = res.date_done
    return float(done.timestamp())


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); enough for latency summaries."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
