"""Scenario q: the queueing model, priority and fairness, on 2 worker processes of 1 child.

Priority: a backlog of low-priority single-step runs (``q_backlog`` steps of
``STEP_S`` each) is queued, then high-priority probes are submitted one at a
time while it drains. For each probe: its queue delay (submit → its step
started), and the earlier low-priority runs that had not started when it was
submitted but started before it finished (should be none, bar the at most one
message per process a worker had already taken). Plain Celery does the same
with ``apply_async(priority=...)`` on kombu's Redis priority lists
(``priority_steps`` 0-9, ``queue_order_strategy: priority``; 0 is highest
there).

Fairness (orchestrator only; Celery has none): tenant B's queue delay idle and
behind tenant A's burst; Jain's index over 10 tenants that each queue a
block of runs, one tenant after another; the shares of 3 tenants weighted
1:2:4. Shares count the runs each tenant started while all of them still had
work waiting.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from bench.harness import Harness
from bench.report import ScenarioResult, Target
from bench.rounds import Ctx
from bench.workloads import WAIT, percentile
from orchestrator import Flow, Workflow
from orchestrator.fields import RUN_FIELDS, step_field, stored
from orchestrator.messages import priority_lists

STEP_S = 0.005
PROBES = 20
CREATED, STARTED = stored(RUN_FIELDS, "created_at"), step_field("s0", "started_at")


def flow(name: str, **options: Any) -> Workflow:
    return Flow(name, 1, **options).step("s0", "bench.steps:nap").build()


def times(h: Harness, run_ids: list[str]) -> dict[str, tuple[float, float | None]]:
    """created_at and s0's started_at of many runs, in one pipeline."""
    pipe = h.r.pipeline(transaction=False)
    for run_id in run_ids:
        pipe.hmget(h.client.store.keys.run(run_id), CREATED, STARTED)
    out = {}
    for run_id, (created, started) in zip(run_ids, pipe.execute(), strict=True):
        out[run_id] = (float(created), float(started) if started else None)
    return out


def drain(h: Harness, run_ids: list[str]) -> dict[str, tuple[float, float | None]]:
    deadline = time.monotonic() + WAIT * 4
    while True:
        found = times(h, run_ids)
        if all(s is not None for _, s in found.values()) or time.monotonic() > deadline:
            time.sleep(0.5)  # let the last steps finish
            return found
        time.sleep(0.2)


def orch_priority(ctx: Ctx, backlog: int) -> dict[str, Any]:
    h = ctx.h
    low_wf, high_wf = flow("bench-prio-low"), flow("bench-prio-high")
    for wf in (low_wf, high_wf, low_wf, high_wf):  # every process loads both versions first
        h.client.submit(wf, {"seconds": STEP_S}).wait(WAIT)
    low = [h.client.submit(low_wf, {"seconds": STEP_S}).id for _ in range(backlog)]
    delays, inverted, parallel, probes = [], [], [], []
    for _ in range(PROBES):
        run = h.client.submit(high_wf, {"seconds": STEP_S}, priority=9)
        doc = run.wait(WAIT)
        fields = h.client.store.reads.run_fields(run.id)
        delays.append(float(fields[STARTED]) - float(fields[CREATED]))
        probes.append(
            (float(fields[CREATED]), float(fields[STARTED]), float(fields["finished_at"]))
        )
        time.sleep(0.1)
        assert doc["state"] == "SUCCEEDED"
    lows = drain(h, low)
    for created, began, done in probes:
        waiting = [s for c, s in lows.values() if c < created and s is not None and s > created]
        inverted.append(sum(1 for s in waiting if s < began))
        parallel.append(sum(1 for s in waiting if began <= s < done))
    return {"delays": delays, "inverted": inverted, "parallel": parallel}


def plain_priority(ctx: Ctx, backlog: int) -> list[float]:
    app = ctx.h.plain_app
    for _ in range(4):  # warm: every process imports what the probe task uses
        app.send_task("bench.stamp", args=[uuid.uuid4().hex], queue="plain", priority=0)
    time.sleep(1.0)
    for _ in range(backlog):
        app.send_task("bench.sleep", kwargs={"seconds": STEP_S}, queue="plain", priority=9)
    delays = []
    for _ in range(PROBES):
        tag = uuid.uuid4().hex
        sent = time.time()
        app.send_task("bench.stamp", args=[tag], queue="plain", priority=0)
        deadline = time.monotonic() + WAIT
        while (started := ctx.h.r.get(f"bench:stamp:{tag}")) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("a plain priority probe never ran")
            time.sleep(0.002)
        delays.append(float(started) - sent)
        time.sleep(0.1)
    # Drop what is left of the backlog (kombu's list per priority step, 0-9 on both sides):
    # the plain workers would otherwise go on draining it, on the same cores, through what
    # is measured next.
    ctx.h.r.delete(*priority_lists("plain"))
    time.sleep(0.5)  # the tasks the plain workers already hold
    return delays


def queue_delays(h: Harness, wf: Workflow, inputs: list[dict[str, Any]]) -> list[float]:
    runs = [h.client.submit(wf, i).id for i in inputs]
    found = drain(h, runs)
    return [s - c for c, s in found.values() if s is not None]


def occupy(h: Harness, seconds: float) -> None:
    """Keep both worker processes busy for ``seconds``, so that what is submitted next all
    waits at once (else the tenants submitted first have the queue to themselves)."""
    blocker = flow("bench-block")
    runs = [h.client.submit(blocker, {"seconds": seconds}, priority=9) for _ in range(2)]
    deadline = time.monotonic() + WAIT
    while any(r.status()["steps"]["s0"]["started_at"] is None for r in runs):
        if time.monotonic() > deadline:
            raise RuntimeError("the blockers never started")
        time.sleep(0.02)


def shares(h: Harness, wf: Workflow, blocks: list[tuple[str, int]]) -> dict[str, int]:
    """Runs started per tenant after the last submit, while every tenant still had work
    waiting."""
    occupy(h, 6.0)
    owner: dict[str, str] = {}
    for tenant, n in blocks:
        for _ in range(n):
            owner[h.client.submit(wf, {"tenant": tenant, "seconds": STEP_S}).id] = tenant
    found = drain(h, list(owner))
    last_submit = max(c for c, _ in found.values())
    order = sorted((s or 0.0, owner[r]) for r, (_, s) in found.items())
    seen: dict[str, int] = dict.fromkeys((t for t, _ in blocks), 0)
    left = {t: sum(1 for s, o in order if o == t and s > last_submit) for t, _ in blocks}
    for started, tenant in order:
        if started <= last_submit:
            continue
        if any(v == 0 for v in left.values()):
            break
        seen[tenant] += 1
        left[tenant] -= 1
    return seen


def jain(values: list[int]) -> float:
    squares = sum(v * v for v in values)
    return sum(values) ** 2 / (len(values) * squares) if squares else 0.0


def orch_fairness(ctx: Ctx, burst: int, block: int) -> dict[str, Any]:
    h = ctx.h
    wf = flow("bench-fair", fairness={"key": "input.tenant", "weights": {"w2": 2, "w4": 4}})
    # B's 10 runs arrive together, idle and behind A's burst: both delays include B's own queue.
    queue_delays(h, wf, [{"tenant": "B", "seconds": STEP_S}] * 4)  # warm
    idle = queue_delays(h, wf, [{"tenant": "B", "seconds": STEP_S}] * 10)
    burst_in = [{"tenant": "A", "seconds": STEP_S}] * burst + [
        {"tenant": "B", "seconds": STEP_S}
    ] * 10
    runs = [h.client.submit(wf, i).id for i in burst_in]
    # Poll B's runs alone while they wait: a poll of all 1,010 runs costs the producer and
    # Redis milliseconds, on the cores B's runs are waiting for, and the poll is not the
    # system under test. A's are drained once B's have started.
    found = drain(h, runs[burst:])
    drain(h, runs[:burst])
    b_delays = [s - c for c, s in found.values() if s is not None]
    equal = shares(h, wf, [(f"t{k}", block) for k in range(10)])
    weighted = shares(h, wf, [("w1", block * 3), ("w2", block * 3), ("w4", block * 3)])
    total = sum(weighted.values()) or 1
    return {
        "idle_p50": statistics.median(idle),
        "burst_b_p50": statistics.median(b_delays),
        "jain": jain(list(equal.values())),
        "equal_shares": equal,
        "weighted_shares": {k: v / total for k, v in weighted.items()},
    }


def scenario_q(ctx: Ctx) -> ScenarioResult:
    backlog = 10_000 if ctx.sizes.a_runs >= 200 else 2_000
    burst, block = (1000, 100) if backlog == 10_000 else (300, 40)
    res = ScenarioResult("q", f"queueing: {backlog} low-priority steps; fairness, {burst} burst")
    ctx.h.set_workers(processes=2, concurrency=1)
    o = orch_priority(ctx, backlog)
    p = plain_priority(ctx, backlog)
    step_ms = STEP_S * 1000
    res.metric(
        "high-priority first step, queue delay p50",
        "ms",
        "lower",
        orch=[percentile(o["delays"], 50) * 1000],
        plain=[percentile(p, 50) * 1000],
    )
    res.metric(
        "high-priority first step, queue delay p99",
        "ms",
        "lower",
        orch=[percentile(o["delays"], 99) * 1000],
        plain=[percentile(p, 99) * 1000],
        target=Target("orch", "<=", 100 + step_ms, "ms"),
    )
    res.metric(
        "earlier unstarted low runs started before a probe started (max)",
        "runs",
        "lower",
        orch=[float(max(o["inverted"]))],
        note="a message a process had already taken when the probe arrived",
    )
    res.metric(
        "earlier unstarted low runs started while a probe ran (max)",
        "runs",
        "lower",
        orch=[float(max(o["parallel"]))],
        note="on the other process, in parallel with the probe",
    )
    f = orch_fairness(ctx, burst, block)
    res.metric("tenant B queue delay idle p50", "ms", "lower", orch=[f["idle_p50"] * 1000])
    res.metric(
        f"tenant B queue delay behind A's {burst} p50",
        "ms",
        "lower",
        orch=[f["burst_b_p50"] * 1000],
        target=Target("orch", "<=", 2 * f["idle_p50"] * 1000 + step_ms, "ms"),
    )
    res.metric(
        "Jain's index, 10 equal tenants", "", "higher", orch=[f["jain"]],
        target=Target("orch", ">=", 0.95),
    )  # fmt: skip
    for key, want in (("w1", 1 / 7), ("w2", 2 / 7), ("w4", 4 / 7)):
        share = f["weighted_shares"][key]
        res.metric(f"share of weight {key[1]} (of 1:2:4)", "", "higher", orch=[share],
                   note=f"expected {want:.3f}")  # fmt: skip
    res.details.update(
        {"orch_priority": o, "plain_priority_delays": p, "fairness": f, "step_s": STEP_S}
    )
    res.notes.append(
        "q: queue delay = submit → step started (orch: Redis times of the run; plain: a task "
        "that stamps its start). Plain Celery: apply_async(priority=0) over a priority=9 "
        "backlog, priority_steps 0-9, queue_order_strategy priority. Fairness is the "
        "orchestrator's alone; shares count runs started while every tenant still had work."
    )
    ctx.default_workers()
    return res
