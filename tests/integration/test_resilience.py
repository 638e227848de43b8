"""Retries without storms: dependency limits, retry budgets, breakers, timeouts.

The acceptance tests of DESIGN.md's promise that "retries of a dependency never
exceed its retry budget, and an open breaker fails fast (or takes the
fallback)", on real Redis and real Celery workers. Each test uses dependency
names, workflow names and provider counters of its own (dependency state in
Redis is global by name). The provider (``tests.steps.resilience:provider``)
counts its calls, first attempts and retries, each call's time and the peak
of calls in flight, under ``res:{tag}:*``.

Tests that need four worker processes or a short lease (2 s, so that a killed
or hard-timed-out attempt is found within seconds) share a private Redis and
pool of four single-child workers; the others use the session pool.
What is checked is behaviour, with generous time bounds, never speed.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator import Client, Flow, Run, Workflow
from orchestrator.client import TERMINAL
from orchestrator.embedded import EmbeddedRedis
from tests.integration.helpers import private_cluster, step_events, wait_until
from tests.steps.resilience import call_times, counts, pids
from workers.pool import WorkerPool

pytestmark = [pytest.mark.integration]

PROVIDER = "tests.steps.resilience:provider"
RAISES = "tests.steps.resilience:raises"
IGNORES_SOFT_LIMIT = "tests.steps.resilience:ignores_soft_limit"
STUBBORN = "tests.steps.basic:stubborn"
SMALL_MODEL = "tests.steps.basic:small_model"
LEASE = 2.0
WAIT = 60.0


def fresh(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:10]}"


def one_step(
    dep_name: str | None, dep: dict[str, Any] | None, task: str, **fields: Any
) -> Workflow:
    """A one-step workflow ``call`` running ``task`` against dependency ``dep_name``."""
    options = {"dependencies": {dep_name: dep}} if dep_name and dep is not None else {}
    flow = Flow(fresh("res"), 1, **options)
    if dep_name:
        fields["dependency"] = dep_name
    return flow.step("call", task, **fields).build()


def wait_all(client: Client, runs: list[Run], timeout: float = WAIT) -> list[dict[str, Any]]:
    """Every run's final status document (polls the states in one pipeline)."""
    deadline = time.monotonic() + timeout
    pending = list(runs)
    while pending:
        pipe = client.redis.pipeline(transaction=False)
        for run in pending:
            pipe.hget(client.store.keys.run(run.id), "state")
        states = [s.decode() if s else "" for s in pipe.execute()]
        pending = [run for run, s in zip(pending, states, strict=True) if s not in TERMINAL]
        if pending and time.monotonic() > deadline:
            stuck = {run.id: run.state() for run in pending[:5]}
            pytest.fail(f"{len(pending)} of {len(runs)} runs not finished in {timeout}s: {stuck}")
        if pending:
            time.sleep(0.1)
    return [run.status() for run in runs]


def all_events(runs: list[Run]) -> list[dict[str, Any]]:
    """The events of every run, in time order, each tagged with its run id."""
    out = [{**e, "run": run.id} for run in runs for e in run.events()]
    return sorted(out, key=lambda e: e["t"])


def states_of(docs: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in docs:
        out[d["state"]] = out.get(d["state"], 0) + 1
    return out


# -- a private Redis and four single-child workers, with a 2 s lease ---------------


@dataclass
class Own:
    server: EmbeddedRedis
    pool: WorkerPool
    client: Client
    r: redis.Redis


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    base = tmp_path_factory.mktemp("resilience")
    with private_cluster(base, queue="orch", processes=4, concurrency=1, lease=LEASE) as c:
        yield Own(c.server, c.pool, c.client, c.r)


# -- 1. a storm of failures is bounded by the retry budget and the breaker ----------


@pytest.mark.usefixtures("workers")
def test_storm_is_bounded_by_budget_and_breaker(client: Client, r: redis.Redis) -> None:
    """200 runs hit a provider that is down for 10 s. Plain Celery autoretry with 4
    attempts would make 800 calls; here calls stay within first attempts plus the
    retry budget, the breaker opens, closes again after recovery, and new runs pass."""
    tag, dep = fresh("storm"), fresh("llm")
    ratio, min_per_s, open_for = 0.1, 1.0, 3.0
    wf = one_step(
        dep,
        {
            "retry_budget": {"ratio": ratio, "min_per_s": min_per_s},
            "breaker": {"failure_rate": 0.5, "min_calls": 20, "open_for": f"{open_for:g}s"},
        },
        PROVIDER,
        retry={"max_attempts": 4, "initial": "0.1s", "max": "1s"},
    )
    client.register(wf)
    t0 = time.time()
    outage_until = t0 + 10.0
    storm = [client.submit(wf, {"tag": tag, "outage_until": outage_until}) for _ in range(200)]
    docs = wait_all(client, storm, timeout=45)
    elapsed = time.time() - t0
    seen = counts(r, tag)

    assert set(states_of(docs)) <= {"SUCCEEDED", "FAILED"}, states_of(docs)
    firsts, retries, calls = seen["firsts"], seen["retries"], seen["calls"]
    bound = firsts + ratio * firsts + min_per_s * (elapsed + 10)
    numbers = (
        f"calls={calls} (firsts={firsts}, retries={retries}), bound={bound:.1f} "
        f"(= {firsts} + {ratio}×{firsts} + {min_per_s}×({elapsed:.1f}+10)), "
        f"plain autoretry=800, runs={states_of(docs)}"
    )
    assert calls == firsts + retries
    assert calls <= bound, numbers
    assert calls <= 800 // 4, numbers

    events = all_events(storm)
    trips = [e for e in events if e.get("breaker") == "open" and "outcome" not in e]
    fast_fails = [e for e in events if e.get("breaker") == "open" and e.get("outcome") == "open"]
    denied = [e for e in events if e.get("budget") == "denied"]
    assert trips, f"the breaker never opened: {numbers}"
    assert fast_fails, "no run failed fast on the open breaker"
    errors = " ".join(str(d["error"]) for d in docs)
    assert "CircuitOpenError" in errors

    # After the outage and the open spell, one new run is the half-open probe
    # and closes the breaker; then the provider takes new runs again.
    breaker_key = f"{client.settings.key_prefix}dep:{dep}:breaker"
    reopen = float(r.hget(breaker_key, "until") or 0)
    time.sleep(max(0.0, max(outage_until, reopen) - time.time()) + 0.5)
    probe = client.submit(wf, {"tag": tag, "outage_until": outage_until})
    probe_doc = probe.wait(WAIT)
    assert probe_doc["state"] == "SUCCEEDED", probe_doc["error"]
    probe_events = probe.events()
    closes = [e for e in probe_events if e.get("breaker") == "closed"]
    assert [e["breaker"] for e in probe_events if "breaker" in e] == ["half_open", "closed"]
    assert closes[0]["t"] > trips[0]["t"] + open_for

    after = [client.submit(wf, {"tag": tag, "outage_until": outage_until}) for _ in range(20)]
    after_docs = wait_all(client, after)
    assert states_of(after_docs) == {"SUCCEEDED": 20}, [d["error"] for d in after_docs]
    assert all(d["result"] == "label" for d in after_docs)
    total = time.time() - t0
    print(
        f"\nobserved storm: {numbers}; elapsed {elapsed:.1f}s; breaker opened at "
        f"T0+{trips[0]['t'] - t0:.2f}s ({len(trips)} trip(s), {len(fast_fails)} fast "
        f"failures), budget denials {len(denied)}, closed at T0+{closes[0]['t'] - t0:.2f}s; "
        f"20 new runs succeeded; test {total:.1f}s"
    )


# -- 2. a rate limit shared by four worker processes ---------------------------------


def test_rate_limit_holds_across_four_worker_processes(own: Own) -> None:
    """80 runs against a 10/s dependency (burst 10) on four worker processes: no
    5 s window sees more than 10×5 + 10 calls, and every run succeeds."""
    assert len(own.pool.workers) == 4
    tag, dep = fresh("rate"), fresh("llm")
    rate, burst, span = 10.0, 10.0, 5.0
    wf = one_step(dep, {"rate": "10/s"}, PROVIDER)
    runs = [own.client.submit(wf, {"tag": tag}) for _ in range(80)]
    docs = wait_all(own.client, runs, timeout=60)
    assert states_of(docs) == {"SUCCEEDED": 80}, [d["error"] for d in docs if d["error"]]

    times = call_times(own.r, tag)
    assert len(times) == 80
    busiest = max(sum(1 for u in times[i:] if u - t <= span) for i, t in enumerate(times))
    limit = rate * span + burst
    assert busiest <= limit + 1, f"{busiest} calls in {span}s, limit {limit:g}"
    spread = times[-1] - times[0]
    assert spread >= (80 - burst) / rate - 1, f"80 calls in {spread:.1f}s: not throttled"
    waits = [e for e in all_events(runs) if e.get("wait") == "rate"]
    assert waits, "no run waited for a rate token"
    assert all(e["dependency"] == dep for e in waits)
    workers = {p for w in own.pool.workers for p in w.child_pids()}
    used = set(pids(own.r, tag))
    print(
        f"\nobserved rate: 80 calls over {spread:.1f}s, busiest {span:g}s window {busiest} "
        f"(limit {limit:g}), {len(waits)} rate waits, {len(used & workers)} worker children"
    )


# -- 3. a concurrency limit, and a slot held by a killed process -----------------


@pytest.mark.usefixtures("workers")
def test_concurrency_limit_is_never_exceeded(client: Client, r: redis.Redis) -> None:
    tag, dep = fresh("conc"), fresh("vdb")
    wf = one_step(dep, {"concurrency": 3}, PROVIDER)
    runs = [client.submit(wf, {"tag": tag, "hold": 0.3}) for _ in range(30)]
    docs = wait_all(client, runs)
    assert states_of(docs) == {"SUCCEEDED": 30}, [d["error"] for d in docs if d["error"]]
    seen = counts(r, tag)
    assert seen["calls"] == 30
    assert 1 <= seen["peak"] <= 3, seen
    assert seen["inflight"] == 0
    waits = [e for e in all_events(runs) if e.get("wait") == "concurrency"]
    assert waits, "no run waited for a concurrency slot"
    assert r.zcard(f"{client.settings.key_prefix}dep:{dep}:slots") == 0, "a slot was left held"
    print(f"\nobserved concurrency: peak {seen['peak']} of 3, {len(waits)} concurrency waits")


def test_slot_of_a_killed_holder_is_freed_within_the_lease(own: Own) -> None:
    """SIGKILL the prefork child holding the only slot of a dependency: the slot
    is a lease, so another run on the same dependency gets it within the lease."""
    tag, dep = fresh("kill"), fresh("vdb")
    limits = {"concurrency": 1}
    holder_wf = one_step(dep, limits, PROVIDER, retry={"max_attempts": 1})
    quick_wf = one_step(dep, limits, PROVIDER)
    holder = own.client.submit(holder_wf, {"tag": tag, "hold": 30.0})
    wait_until(lambda: bool(pids(own.r, tag)), timeout=WAIT)
    (pid,) = pids(own.r, tag)
    parents = {w.pid for w in own.pool.workers}
    assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) in parents
    slots = f"{own.client.settings.key_prefix}dep:{dep}:slots"
    assert own.r.zcard(slots) == 1
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    quick = own.client.submit(quick_wf, {"tag": tag})
    doc = quick.wait(LEASE + 10)
    took = time.monotonic() - killed
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert took <= LEASE + 10
    waits = [e for e in quick.events() if e.get("wait") == "concurrency"]
    assert waits, "the quick run never waited: the dead holder's slot was not held"

    held = own.client.run(holder.id).wait(WAIT)
    assert held["state"] == "FAILED"
    assert "WorkerLostError" in str(held["error"]), held["error"]
    assert own.r.zcard(slots) == 0
    print(f"\nobserved kill: slot freed, quick run done {took:.1f}s after SIGKILL")


# -- 4. per-attempt timeouts: soft, and hard when the step ignores the soft one ------


@pytest.mark.usefixtures("workers")
def test_soft_timeout_fails_the_attempt_and_the_retry_succeeds(client: Client) -> None:
    wf = one_step(None, None, STUBBORN, retry={"timeout": 1, "initial": "0.1s", "max_attempts": 3})
    run = client.submit(wf, {"seconds": 5})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == 2
    assert doc["steps"]["call"]["attempts"] == 2
    retrying = [e for e in step_events(run.events(), "call") if e["to"] == "RETRYING"]
    assert len(retrying) == 1, retrying
    assert "exceeded its 1s timeout" in retrying[0]["error"], retrying[0]
    assert json.loads(retrying[0]["error"])["type"] == "SoftTimeLimitExceeded"


def test_hard_timeout_ends_the_run_after_max_attempts(own: Own) -> None:
    """A step that swallows the soft limit is killed at the hard limit; each kill is
    a lost attempt (WorkerLostError), and after max_attempts the run fails."""
    tag = fresh("hard")
    wf = one_step(
        None, None, IGNORES_SOFT_LIMIT, retry={"timeout": 1, "initial": "0.1s", "max_attempts": 2}
    )
    run = own.client.submit(wf, {"tag": tag, "seconds": 30})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED", doc
    step = doc["steps"]["call"]
    assert step["attempts"] == 2, step
    assert "WorkerLostError" in str(step["error"]), step
    assert "WorkerLostError" in str(doc["error"]), doc["error"]
    time.sleep(2 * LEASE)  # long enough for a loop to show
    assert counts(own.r, tag)["calls"] == 2
    assert own.client.run(run.id).status() == doc, "the failed run changed"


# -- 5. an open breaker takes the fallback, or fails fast without one ----------------


@pytest.mark.usefixtures("workers")
def test_open_breaker_takes_the_fallback_or_fails_fast(client: Client, r: redis.Redis) -> None:
    tag, dep = fresh("fb"), fresh("llm")
    limits = {"breaker": {"failure_rate": 0.5, "min_calls": 3, "open_for": "30s"}}
    once = {"max_attempts": 1}
    with_fb = one_step(dep, limits, PROVIDER, retry=once, fallback=SMALL_MODEL)
    without = one_step(dep, limits, PROVIDER, retry=once)

    # Three failing calls open the breaker; each run is answered by the fallback.
    for _ in range(3):
        doc = client.submit(with_fb, {"tag": tag, "down": True}).wait(WAIT)
        assert doc["state"] == "SUCCEEDED", doc["error"]
        assert doc["result"] == "small-label"
        assert doc["steps"]["call"].get("fallback") is True, doc["steps"]["call"]
    assert counts(r, tag)["calls"] == 3
    state = r.hget(f"{client.settings.key_prefix}dep:{dep}:breaker", "state")
    assert state == "open", f"breaker is {state!r} after 3 failures of 3 calls"

    later = [client.submit(with_fb, {"tag": tag, "down": True}) for _ in range(5)]
    docs = wait_all(client, later)
    assert states_of(docs) == {"SUCCEEDED": 5}, [d["error"] for d in docs]
    assert all(d["result"] == "small-label" for d in docs)
    assert all(d["steps"]["call"].get("fallback") is True for d in docs)
    assert counts(r, tag)["calls"] == 3, "the provider was called through an open breaker"
    events = all_events(later)
    assert sum(1 for e in events if e.get("outcome") == "fallback") == 5

    run = client.submit(without, {"tag": tag, "down": True})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED"
    assert doc["steps"]["call"]["attempts"] == 1
    assert "CircuitOpenError" in str(doc["error"]), doc["error"]
    assert counts(r, tag)["calls"] == 3


@pytest.mark.usefixtures("workers")
def test_half_open_probe_answered_by_the_fallback_reopens_or_closes(
    client: Client, r: redis.Redis
) -> None:
    """A probe whose call fails is answered by the fallback and opens the breaker
    again (it does not stay half-open); a probe whose call succeeds closes it."""
    tag, dep = fresh("probe"), fresh("llm")
    limits = {"breaker": {"failure_rate": 0.5, "min_calls": 3, "open_for": "1s"}}
    wf = one_step(dep, limits, PROVIDER, retry={"max_attempts": 1}, fallback=SMALL_MODEL)
    breaker = f"{client.settings.key_prefix}dep:{dep}:breaker"
    for _ in range(3):
        assert client.submit(wf, {"tag": tag, "down": True}).result(WAIT) == "small-label"
    assert r.hget(breaker, "state") == "open"

    time.sleep(1.2)
    failed_probe = client.submit(wf, {"tag": tag, "down": True})
    assert failed_probe.result(WAIT) == "small-label"
    marks = [e["breaker"] for e in failed_probe.events() if "breaker" in e]
    assert marks == ["half_open", "open"], marks
    assert r.hget(breaker, "state") == "open"
    assert counts(r, tag)["calls"] == 4

    time.sleep(1.2)
    good_probe = client.submit(wf, {"tag": tag})
    assert good_probe.result(WAIT) == "label"
    marks = [e["breaker"] for e in good_probe.events() if "breaker" in e]
    assert marks == ["half_open", "closed"], marks
    assert (r.hget(breaker, "state") or "closed") == "closed"
    assert client.submit(wf, {"tag": tag}).result(WAIT) == "label"
    assert counts(r, tag)["calls"] == 6


# -- 6. a spent retry budget fails the step, saying so -------------------------------


@pytest.mark.usefixtures("workers")
def test_spent_retry_budget_fails_without_fallback(client: Client, r: redis.Redis) -> None:
    """Budget 0.1 × 4 first attempts + 0.1/s × 10 s = 1.4: one retry in all."""
    tag, dep = fresh("budget"), fresh("llm")
    wf = one_step(
        dep,
        {"retry_budget": {"ratio": 0.1, "min_per_s": 0.1}},
        PROVIDER,
        retry={"max_attempts": 3, "initial": "0.1s", "max": "0.2s"},
    )
    runs = [client.submit(wf, {"tag": tag, "down": True}) for _ in range(4)]
    docs = wait_all(client, runs)
    assert states_of(docs) == {"FAILED": 4}
    for d in docs:
        assert "retry budget" in str(d["error"]), d["error"]
        assert "retry budget" in str(d["steps"]["call"]["error"])
    seen = counts(r, tag)
    assert seen == {"calls": 5, "firsts": 4, "retries": 1, "peak": seen["peak"], "inflight": 0}
    denied = [e for e in all_events(runs) if e.get("budget") == "denied"]
    assert len(denied) == 4, denied
    assert all(e["dependency"] == dep for e in denied)


# -- 7. errors that must not be retried ------------------------------------------------


@pytest.mark.usefixtures("workers")
@pytest.mark.parametrize(
    ("kind", "retry", "attempts"),
    [
        ("NonRetryableError", {}, 1),
        ("QuotaError", {"non_retryable": ["QuotaError"]}, 1),
        ("ValueError", {"non_retryable": ["builtins.ValueError"]}, 1),
        ("ValueError", {"retry_on": ["TimeoutError"]}, 1),
        ("QuotaError", {"retry_on": ["QuotaError"]}, 5),  # control: this one retries
    ],
    ids=["NonRetryableError", "non_retryable", "non_retryable-qualified", "retry_on", "control"],
)
def test_non_retryable_errors_fail_at_once(
    client: Client, r: redis.Redis, kind: str, retry: dict[str, Any], attempts: int
) -> None:
    tag = fresh("nr")
    policy = {"max_attempts": 5, "initial": "0.05s", "max": "0.1s", **retry}
    run = client.submit(one_step(None, None, RAISES, retry=policy), {"tag": tag, "kind": kind})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED"
    assert doc["steps"]["call"]["attempts"] == attempts, doc["steps"]["call"]
    assert kind in str(doc["error"]), doc["error"]
    assert counts(r, tag)["calls"] == attempts
    assert len([e for e in step_events(run.events(), "call") if e["to"] == "RETRYING"]) == (
        attempts - 1
    )
