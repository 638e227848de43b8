"""Scenarios f–h: what a step costs (Redis commands, CPU), compile time, memory, scaling.

These say *why* the throughput numbers of a and b come out as they do: a
step that needs more Redis round trips or more worker CPU than a Celery task
cannot be faster on the same cores, whatever the dispatch model.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench.probes import Monitor
from bench.report import ScenarioResult, Target
from bench.rounds import Ctx, Sample, ab, settle
from bench.scenarios import chain_samples, fan_samples
from bench.workloads import (
    WAIT,
    chain_flow,
    check_orch,
    fan_flow,
    plain_chain,
    plain_chord,
)
from orchestrator import Client, Flow, Settings, Workflow, compile_plan, validate

TTL_QUEUE = "bench-ttl"
TTL_SECONDS = 5

# -- f. Redis commands and CPU per step ---------------------------------------------


def _lua_usec(samples: list[Sample]) -> list[float]:
    return [s.cmds.get("evalsha", (0, 0))[1] / s.steps for s in samples]


def _cpu_ms(samples: list[Sample], key: str) -> list[float]:
    return [s.cpu[key] * 1000 / s.steps for s in samples]


def _monitor(ctx: Ctx) -> dict[str, dict[str, float]]:
    """Round trips vs in-script commands per step, from a small idle MONITOR sample."""
    h, app, n = ctx.h, ctx.h.plain_app, ctx.sizes.monitor_runs
    out: dict[str, dict[str, float]] = {}
    shapes: list[tuple[str, Workflow, Any, int, int]] = [
        ("a", chain_flow(10), lambda: plain_chain(app), 10, 10),
        ("b", fan_flow(100), lambda: plain_chord(app), 102, 101),
    ]
    for key, wf, make, orch_steps, plain_steps in shapes:
        settle(h)
        with Monitor(h.server.port) as mon:
            for _ in range(n):
                run = h.client.submit(wf, {})
                check_orch(run, run.wait(WAIT))
        orch_rt, orch_lua, orch_trips = mon.client_cmds, mon.lua_cmds, mon.round_trips
        settle(h)
        with Monitor(h.server.port) as mon:
            for _ in range(n):
                make().apply_async().get(timeout=WAIT)
        out[key] = {
            "orch_client_cmds": orch_rt.total() / (n * orch_steps),
            "orch_round_trips": orch_trips / (n * orch_steps),
            "orch_in_lua": orch_lua.total() / (n * orch_steps),
            "plain_client_cmds": mon.client_cmds.total() / (n * plain_steps),
            "plain_round_trips": mon.round_trips / (n * plain_steps),
            "plain_in_lua": mon.lua_cmds.total() / (n * plain_steps),
        }
        out[key + "_orch_by_command"] = {
            k: v / (n * orch_steps) for k, v in orch_rt.most_common(12)
        }
        out[key + "_plain_by_command"] = {
            k: v / (n * plain_steps) for k, v in mon.client_cmds.most_common(12)
        }
    return out


def scenario_f(ctx: Ctx) -> ScenarioResult:
    res = ScenarioResult("f", "Redis commands and CPU per step (workloads of a and b)")
    ctx.default_workers()
    if "a" not in ctx.cache:
        ctx.cache["a"] = chain_samples(ctx, ctx.sizes.a_runs)
    if "b" not in ctx.cache:
        ctx.cache["b"] = fan_samples(ctx, ctx.sizes.b_runs)
    for key in ("a", "b"):
        o, p = ctx.cache[key]
        res.metric(
            f"{key}: Redis commands per step (commandstats)",
            "cmds",
            "lower",
            orch=[s.commands_per_step() for s in o],
            plain=[s.commands_per_step() for s in p],
            target=Target("ratio", "<=", 1.0),
        )
        res.details[f"{key}_orch_commands_per_step"] = _by_command(o[0])
        res.details[f"{key}_plain_commands_per_step"] = _by_command(p[0])
    mon = _monitor(ctx)
    res.details["monitor"] = mon
    for key in ("a", "b"):
        res.metric(
            f"{key}: commands sent by clients per step (MONITOR)",
            "cmds",
            "lower",
            orch=[mon[key]["orch_client_cmds"]],
            plain=[mon[key]["plain_client_cmds"]],
        )
        res.metric(
            f"{key}: round trips per step (MONITOR, MULTI…EXEC = 1)",
            "trips",
            "lower",
            orch=[mon[key]["orch_round_trips"]],
            plain=[mon[key]["plain_round_trips"]],
        )
        res.metric(
            f"{key}: commands inside Lua per step (MONITOR)",
            "cmds",
            "lower",
            orch=[mon[key]["orch_in_lua"]],
            plain=[mon[key]["plain_in_lua"]],
        )
    for key in ("a", "b"):
        o, p = ctx.cache[key]
        res.metric(
            f"{key}: Lua (EVALSHA) time per step",
            "µs",
            "lower",
            orch=_lua_usec(o),
            plain=_lua_usec(p),
        )
        res.details[f"{key}_worker_cpu_ms_per_step"] = {
            side: {
                part: statistics.median(_cpu_ms(samples, f"{side}_{part}"))
                for part in ("main", "children")
            }
            for side, samples in (("orch", o), ("plain", p))
        }
        for proc, label in (("redis", "Redis"), ("client", "client")):
            res.metric(
                f"{key}: {label} CPU per step",
                "ms",
                "lower",
                orch=_cpu_ms(o, proc),
                plain=_cpu_ms(p, proc),
            )
        res.metric(
            f"{key}: worker CPU per step",
            "ms",
            "lower",
            orch=_cpu_ms(o, "orch_workers"),
            plain=_cpu_ms(p, "plain_workers"),
        )
    res.notes.append(
        "commandstats counts every command Redis executes, including those a Lua script "
        "runs, and everything the client does (submits, waits); idle polling of the other "
        "side's workers is included in both (a few per second). Plain's Lua is Celery's own "
        "chord-counting script. CPU is /proc utime+stime of each process over the timed "
        "batches (worker = main process + prefork children; the split is in the JSON)."
    )
    return res


def _by_command(sample: Sample) -> dict[str, float]:
    top = sorted(sample.cmds.items(), key=lambda kv: -kv[1][0])[:16]
    return {cmd: calls / sample.steps for cmd, (calls, _) in top}


# -- g. compile time, memory per run, TTL ---------------------------------------------


def random_dag(n: int, seed: int = 7) -> Workflow:
    """``n`` no-op steps, each after 0–3 random earlier steps."""
    rng = random.Random(seed)
    f = Flow(f"bench-random{n}", 1)
    for i in range(n):
        after = [f"n{j:04d}" for j in rng.sample(range(i), rng.randint(0, min(3, i)))]
        f.step(f"n{i:04d}", "bench.steps:noop", after=after)
    return f.build()


def _timed_ms(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _run_keys(ctx: Ctx, run_id: str) -> list[str]:
    return sorted(ctx.h.r.scan_iter(match=f"{ctx.h.client.store.keys.run(run_id)}*", count=1000))


def _memory(ctx: Ctx, keys: list[str]) -> tuple[float, float]:
    """Total MEMORY USAGE in KiB, and the share of keys that carry a TTL."""
    r = ctx.h.r
    size = sum(int(r.memory_usage(k, samples=0) or 0) for k in keys)
    with_ttl = sum(1 for k in keys if int(r.ttl(k)) > 0)
    return size / 1024, with_ttl / max(1, len(keys))


def _ttl_check(ctx: Ctx) -> dict[str, Any]:
    """A run finished by a worker with ORCH_RUN_TTL=5: are its keys gone ~6 s later?"""
    h = ctx.h
    pool = h.ttl_pool(TTL_QUEUE, TTL_SECONDS)
    try:
        wf = chain_flow(10, name="bench-ttl-chain", queue=TTL_QUEUE)
        with Client(h.url, settings=Settings(run_ttl=TTL_SECONDS)) as client:
            run = client.submit(wf, {})
            check_orch(run, run.wait(WAIT))
        finished = time.monotonic()
        keys = _run_keys(ctx, run.id)
        pttl = {k: int(h.r.pttl(k)) for k in keys}
        time.sleep(max(0.0, finished + TTL_SECONDS + 1 - time.monotonic()))
        left = _run_keys(ctx, run.id)
    finally:
        h.drop_pool(pool)
    return {"keys": len(keys), "pttl_ms": pttl, "left_after_ttl_plus_1s": left}


def scenario_g(ctx: Ctx) -> ScenarioResult:
    res = ScenarioResult("g", "compile time; Redis memory and TTL of a finished run")
    compiled: dict[int, list[float]] = {}
    for n in (100, 1000):
        wf = random_dag(n)
        compile_plan(wf)  # warm caches (cached properties, imports)
        compiled[n] = _timed_ms(lambda wf=wf: compile_plan(wf), 20)
        res.details[f"validate_{n}_ms"] = statistics.median(
            _timed_ms(lambda wf=wf: validate(wf), 5)
        )
    res.metric(
        "compile_plan, 100-node random DAG (median of 20)", "ms", "lower", orch=compiled[100]
    )
    res.metric(
        "compile_plan, 1,000-node random DAG (median of 20)",
        "ms",
        "lower",
        orch=compiled[1000],
        target=Target("orch", "<=", 50.0, "ms"),
    )
    ctx.default_workers()
    h, app, wf = ctx.h, ctx.h.plain_app, chain_flow(10)

    def orch() -> tuple[float, float]:
        run = h.client.submit(wf, {})
        check_orch(run, run.wait(WAIT))
        return _memory(ctx, _run_keys(ctx, run.id))

    def plain() -> tuple[float, float]:
        last = plain_chain(app).apply_async()
        last.get(timeout=WAIT)
        ids, node = [], last
        while node is not None:
            ids.append(node.id)
            node = node.parent
        return _memory(ctx, [f"celery-task-meta-{i}" for i in ids])

    o, p = ab(ctx, orch, plain)
    res.metric(
        "Redis memory per finished 10-step run",
        "KiB",
        "lower",
        orch=[x[0] for x in o],
        plain=[x[0] for x in p],
    )
    res.metric(
        "share of the run's keys with a TTL",
        "share",
        "higher",
        orch=[x[1] for x in o],
        plain=[x[1] for x in p],
        target=Target("orch", ">=", 1.0),
    )
    check = _ttl_check(ctx)
    res.details["ttl_check"] = check
    res.metric(
        f"keys left {TTL_SECONDS + 1} s after a run with ORCH_RUN_TTL={TTL_SECONDS}",
        "keys",
        "lower",
        orch=[float(len(check["left_after_ttl_plus_1s"]))],
        target=Target("orch", "<=", 0.0),
    )
    res.details.update({f"compile_{n}_ms": v for n, v in compiled.items()})
    res.notes.append(
        "memory = sum of MEMORY USAGE (SAMPLES 0) over the run's keys: orch run hash + "
        "event list; plain = the 10 celery-task-meta result keys. Compile and validate are "
        "pure Python in this process; validate() also runs inside every client.submit()."
    )
    return res


# -- h. scaling with worker processes ------------------------------------------------


def scenario_h(ctx: Ctx) -> ScenarioResult:
    n = ctx.sizes.h_runs
    res = ScenarioResult("h", f"scaling: {n} 10-step chains on 1, 2, 4 worker processes × 1")
    curve: dict[str, dict[int, float]] = {"orch": {}, "plain": {}}
    for procs in (1, 2, 4):
        ctx.h.set_workers(processes=procs, concurrency=1)
        o, p = chain_samples(ctx, n)
        m = res.metric(
            f"steps/s, {procs} worker process{'es' if procs > 1 else ''} × 1",
            "steps/s",
            "higher",
            orch=[s.rate for s in o],
            plain=[s.rate for s in p],
        )
        curve["orch"][procs] = m.orch_median or 0.0
        curve["plain"][procs] = m.plain_median or 0.0
    res.details["curve"] = curve
    cores = ctx.h.machine.get("cpu_count") or 0
    speedups = {side: {k: v / c[1] for k, v in c.items() if c[1]} for side, c in curve.items()}
    res.details["speedup_vs_1"] = speedups
    text = ", ".join(
        f"{side} ×{s.get(2, 0):.2f} at 2 and ×{s.get(4, 0):.2f} at 4 processes"
        for side, s in speedups.items()
    )
    res.notes.append(
        f"speed-up over 1 process: {text}. This machine has {cores} cores shared by Redis, "
        "the producer and the workers, so the curve flattens (or falls) past "
        f"{max(1, cores - 1)}–{cores} processes: more processes only share the same cores. "
        "Scaling out needs more machines, which this benchmark cannot show."
    )
    return res
