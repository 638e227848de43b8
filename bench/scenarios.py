"""Scenarios a–e: throughput and latency of the two sides on the same workloads.

Each scenario returns table rows (``Metric``) with one value per A/B round
(see ``rounds``), plus raw detail for the JSON, plus notes that say how a
number was taken wherever the two sides cannot be measured the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench.harness import Harness
from bench.probes import MemorySampler
from bench.report import ScenarioResult, Target
from bench.rounds import Ctx, Sample, ab, measured, warm
from bench.workloads import (
    WAIT,
    Batch,
    chain_flow,
    chain_hops,
    check_orch,
    dag_flow,
    fan_flow,
    map_flow,
    orch_batch,
    percentile,
    plain_batch,
    plain_chain,
    plain_chord,
    plain_dag,
    plain_done,
    plain_group,
    single_flow,
    step_times,
)

#: Sleeps of the DAG scenario. c is 0.3 s, not 0.5 s: with two worker slots a
#: 0.5 s c would have c, d and e ready at once (0.6–0.7 s), and no scheduler
#: could then finish in 0.8 s (1.7 s of work on 2 slots needs ≥ 0.85 s). With
#: 0.3 s the critical path (b→d, b→e = 0.8 s) is reachable on two slots.
DAG_SLEEPS = {"a": 0.2, "b": 0.6, "c": 0.3, "d": 0.2, "e": 0.2}
CRITICAL_PATH = 0.8
SINK = "bench-sink"  # a queue no worker consumes: submits are measured alone


def _ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


# -- a. 10-step chain ---------------------------------------------------------------


def chain_samples(ctx: Ctx, runs: int) -> tuple[list[Sample], list[Sample]]:
    """Scenario a's timed workload (also used by f and h): ``runs`` chains of 10."""
    h, app, wf = ctx.h, ctx.h.plain_app, chain_flow(10)
    warm(ctx.h, wf, lambda: plain_chain(app), {})
    return ab(
        ctx,
        lambda: measured(h, lambda: orch_batch(h.client, wf, runs, {}), runs * 10),
        lambda: measured(h, lambda: plain_batch(lambda: plain_chain(app), runs), runs * 10),
    )


def _orch_hops(batch: Batch) -> list[float]:
    return [hop for run in batch.orch_runs for hop in chain_hops(run.events(), 10)["hop"]]


def _plain_hops(batch: Batch) -> list[float]:
    """Plain chain latency ÷ 10: submit → last result stored, as an approximate hop."""
    return [
        (plain_done(res) - sent) / 10
        for res, sent in zip(batch.plain_results, batch.submitted, strict=True)
    ]


def scenario_a(ctx: Ctx) -> ScenarioResult:
    res = ScenarioResult("a", f"{ctx.sizes.a_runs} runs of a 10-step chain")
    ctx.default_workers()
    o, p = chain_samples(ctx, ctx.sizes.a_runs)
    ctx.cache["a"] = (o, p)
    res.metric(
        "steps/s end to end",
        "steps/s",
        "higher",
        orch=[s.rate for s in o],
        plain=[s.rate for s in p],
        target=Target("ratio", ">=", 1.0),
    )
    h, app, wf = ctx.h, ctx.h.plain_app, chain_flow(10)
    n = ctx.sizes.a_idle
    breakdown: dict[str, list[float]] = {"queue": [], "dispatch": [], "step": [], "run/10": []}

    def orch_idle() -> list[float]:
        hops: list[float] = []
        for _ in range(n):
            run = h.client.submit(wf, {})
            check_orch(run, run.wait(WAIT))
            parts = chain_hops(run.events(), 10)
            hops += parts["hop"]
            for k in ("queue", "dispatch", "step"):
                breakdown[k] += parts[k]
            fields = h.client.store.reads.run_fields(run.id)
            breakdown["run/10"].append(
                (float(fields["finished_at"]) - float(fields["created_at"])) / 10
            )
        return hops

    def plain_idle() -> list[float]:
        return [
            hop for _ in range(n) for hop in _plain_hops(plain_batch(lambda: plain_chain(app), 1))
        ]

    io, ip = ab(ctx, orch_idle, plain_idle)
    lo, lp = [_orch_hops(s.batch) for s in o], [_plain_hops(s.batch) for s in p]
    for label, ov, pv in (("idle", io, ip), ("under load", lo, lp)):
        for q in (50, 99):
            res.metric(
                f"hop latency {label} p{q}",
                "ms",
                "lower",
                orch=_ms([percentile(v, q) for v in ov]),
                plain=_ms([percentile(v, q) for v in pv]),
            )
    res.details["orch_idle_breakdown_ms_p50"] = {
        k: percentile(v, 50) * 1000 for k, v in breakdown.items()
    }
    res.details["orch_idle_breakdown_ms_p99"] = {
        k: percentile(v, 99) * 1000 for k, v in breakdown.items()
    }
    res.notes.append(
        "hop latency: orch = s(i) RUNNING → s(i+1) RUNNING from run.events() (step, then one "
        "complete-and-claim script: the worker runs on with no broker hop); plain = chain "
        "latency (submit → last result stored) ÷ 10, "
        "an approximation that also spreads the first delivery over the hops. Orch's own "
        "submit → finish ÷ 10 is in the JSON (orch_idle_breakdown_ms_p50['run/10'])."
    )
    return res


# -- b. fan-out 100 → join ------------------------------------------------------------


def fan_samples(ctx: Ctx, runs: int) -> tuple[list[Sample], list[Sample]]:
    """Scenario b's timed workload (also used by f)."""
    h, app, wf = ctx.h, ctx.h.plain_app, fan_flow(100)
    warm(ctx.h, wf, lambda: plain_chord(app), {})
    return ab(
        ctx,
        lambda: measured(h, lambda: orch_batch(h.client, wf, runs, {}), runs * 102),
        lambda: measured(h, lambda: plain_batch(lambda: plain_chord(app), runs), runs * 101),
    )


def scenario_b(ctx: Ctx) -> ScenarioResult:
    res = ScenarioResult("b", f"{ctx.sizes.b_runs} runs of fan-out 100 → join")
    ctx.default_workers()
    o, p = fan_samples(ctx, ctx.sizes.b_runs)
    ctx.cache["b"] = (o, p)
    res.metric(
        "runs/s end to end",
        "runs/s",
        "higher",
        orch=[len(s.batch.orch_runs) / s.batch.wall for s in o],
        plain=[len(s.batch.plain_results) / s.batch.wall for s in p],
        target=Target("ratio", ">=", 2.0),
    )
    h, app, wf = ctx.h, ctx.h.plain_app, fan_flow(100)
    n = ctx.sizes.b_idle

    def orch_idle() -> tuple[float, float]:
        walls, joins = [], []
        for _ in range(n):
            batch = orch_batch(h.client, wf, 1, {})
            done = step_times(batch.orch_runs[0].events(), "SUCCEEDED")
            last_branch = max(t for s, t in done.items() if s.startswith("f"))
            walls.append(batch.wall)
            joins.append(done["join"] - last_branch)
        return statistics.median(walls), statistics.median(joins)

    def plain_idle() -> tuple[float, float]:
        walls, joins = [], []
        for _ in range(n):
            batch = plain_batch(lambda: plain_chord(app), 1)
            body = batch.plain_results[0]
            last_branch = max(plain_done(r) for r in body.parent.results)
            walls.append(batch.wall)
            joins.append(plain_done(body) - last_branch)
        return statistics.median(walls), statistics.median(joins)

    io, ip = ab(ctx, orch_idle, plain_idle)
    res.metric(
        "idle fan-out/join latency (submit → result)",
        "ms",
        "lower",
        orch=_ms([w for w, _ in io]),
        plain=_ms([w for w, _ in ip]),
        target=Target("ratio", "<=", 0.25),
    )
    res.metric(
        "idle join hop (last branch done → join done)",
        "ms",
        "lower",
        orch=_ms([j for _, j in io]),
        plain=_ms([j for _, j in ip]),
    )
    res.notes.append(
        "orch runs 102 steps per run (root, 100 branches, join); the chord runs 101 tasks "
        "(no root). Latency is measured by the client, submit → result in hand."
    )
    return res


# -- c. non-series-parallel DAG ----------------------------------------------------------


def scenario_c(ctx: Ctx) -> ScenarioResult:
    res = ScenarioResult("c", "DAG a→c, a→d, b→d, b→e with sleeping steps")
    ctx.default_workers()
    h, app, wf = ctx.h, ctx.h.plain_app, dag_flow()
    warm(ctx.h, wf, lambda: plain_dag(app, DAG_SLEEPS), {})
    server: list[float] = []

    def orch() -> float:
        walls = []
        for _ in range(ctx.sizes.c_reps):
            batch = orch_batch(h.client, wf, 1, {})
            fields = h.client.store.reads.run_fields(batch.orch_runs[0].id)
            server.append(float(fields["finished_at"]) - float(fields["created_at"]))
            walls.append(batch.wall)
        return statistics.median(walls) / CRITICAL_PATH

    def plain() -> float:
        walls = [
            plain_batch(lambda: plain_dag(app, DAG_SLEEPS), 1).wall for _ in range(ctx.sizes.c_reps)
        ]
        return statistics.median(walls) / CRITICAL_PATH

    o, p = ab(ctx, orch, plain)
    res.metric(
        "makespan ÷ critical path (0.8 s)",
        "×",
        "lower",
        orch=o,
        plain=p,
        target=Target("orch", "<=", 1.05),
    )
    res.details["sleeps_s"] = DAG_SLEEPS
    res.details["orch_server_makespan_s"] = server
    res.notes.append(
        "plain cannot express the DAG: its best canvas is group(a, b) | group(c, d, e), whose "
        "barrier makes c wait for b. Sleeps a .2, b .6, c .3, d .2, e .2 s: c is 0.3 s, not "
        "0.5 s, so the 0.8 s critical path fits the 2 worker slots (with 0.5 s, c, d and e "
        "are ready at once and no scheduler can beat 0.85 s)."
    )
    return res


# -- d. map over 1,000 ---------------------------------------------------------------------


def scenario_d(ctx: Ctx) -> ScenarioResult:
    n = ctx.sizes.d_elems
    res = ScenarioResult("d", f"map over {n:,} elements")
    ctx.default_workers()
    h, app, wf = ctx.h, ctx.h.plain_app, map_flow()
    warm(ctx.h, wf, lambda: plain_group(app, 10), {"n": 10})

    def side(run: Callable[[], Batch]) -> tuple[float, float, float]:
        with MemorySampler(h.url) as mem:
            batch = run()
        retained = h.used_memory() - mem.baseline
        return batch.wall, (mem.peak - mem.baseline) / 2**20, retained / 2**20

    o, p = ab(
        ctx,
        lambda: side(lambda: orch_batch(h.client, wf, 1, {"n": n})),
        lambda: side(lambda: plain_batch(lambda: plain_group(app, n), 1)),
    )
    res.metric("wall time", "s", "lower", orch=[x[0] for x in o], plain=[x[0] for x in p])
    res.metric(
        "Redis peak used_memory above baseline",
        "MiB",
        "lower",
        orch=[x[1] for x in o],
        plain=[x[1] for x in p],
    )
    res.details["retained_mib"] = {"orch": [x[2] for x in o], "plain": [x[2] for x in p]}
    res.notes.append(
        "peak = max of INFO used_memory sampled every 5 ms during the run, minus the value "
        "just before (allocator noise is ~0.05 MiB). What a finished run keeps is in g."
    )
    return res


# -- e. submit throughput --------------------------------------------------------------------


def scenario_e(ctx: Ctx) -> ScenarioResult:
    n = ctx.sizes.e_submits
    res = ScenarioResult("e", f"submit throughput: {n:,} submits from one producer")
    ctx.default_workers()
    h, app, wf = ctx.h, ctx.h.plain_app, single_flow(SINK)

    def orch() -> float:
        t0 = time.perf_counter()
        runs = [h.client.submit(wf, {}) for _ in range(n)]
        wall = time.perf_counter() - t0
        _drop_orch_runs(h, [r.id for r in runs])
        return n / wall

    def plain() -> float:
        t0 = time.perf_counter()
        # Results are kept, like orch's Run handles: a dropped AsyncResult unsubscribes
        # from its result channel in __del__, which would add a round trip per submit.
        sent = [app.send_task("bench.noop", queue=SINK) for _ in range(n)]
        wall = time.perf_counter() - t0
        for res in sent:
            res.forget()
        del sent
        h.r.delete(SINK)
        return n / wall

    h.client.submit(wf, {})  # registers the workflow outside the timing
    o, p = ab(ctx, orch, plain)
    res.metric("runs accepted per second", "runs/s", "higher", orch=o, plain=p)
    res.notes.append(
        f"submits go to queue {SINK!r}, which no worker consumes, so the producer is timed "
        "alone; orch = client.submit(Workflow) of a 1-step workflow (validates the workflow "
        "object each call); plain = app.send_task('bench.noop') with the result backend on "
        "(which SUBSCRIBEs to each task's result channel)."
    )
    return res


def _drop_orch_runs(h: Harness, run_ids: list[str]) -> None:
    """Remove the never-consumed runs of scenario e, so later scenarios start clean."""
    keys = h.client.store.keys
    pipe = h.r.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.delete(keys.run(run_id), keys.events(run_id))
        pipe.zrem(keys.runs, run_id)
    pipe.delete(SINK)
    pipe.execute()
