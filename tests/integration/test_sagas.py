"""Sagas and the run lifecycle: compensation, cancel, resume, pinned versions.

What DESIGN.md promises, checked on real Redis and real Celery workers:
- on failure or cancel, compensations run for exactly the completed steps that
  declare one, each once, in reverse completion order, with their own retries
  (a killed compensation is run again, its keyed effect happens once);
- the saga waits for in-flight attempts, then undoes one step at a time, and a
  compensation that fails for good stops it (COMPENSATION_FAILED, step named);
- cancel stops new steps, joins a running saga, is idempotent, and leaves a
  finished run as it was;
- ``orch retry`` resumes a FAILED run as a new linked run without re-running
  completed steps; runs keep the graph version they started with;
- every recorded event is a legal transition, and no illegal one is counted.

Completion order is read from the run's own history (the order of its
SUCCEEDED events, which the Lua scripts append atomically); what each
compensation did is read from the ledgers of ``tests.steps.saga_checks``.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator import (
    Client,
    Flow,
    NotFoundError,
    OrchestratorError,
    Run,
    Workflow,
    WorkflowConflictError,
)
from orchestrator.client import TERMINAL
from orchestrator.embedded import EmbeddedRedis
from orchestrator.messages import priority_lists
from orchestrator.states import (
    RUN_REOPEN,
    RUN_TRANSITIONS,
    STEP_REOPEN,
    STEP_TRANSITIONS,
    RunState,
    StepState,
)
from tests.integration.helpers import private_cluster
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

C = "tests.steps.saga_checks"
SAGA = "tests.steps.saga"
WAIT = 60.0


# -- reading what happened ---------------------------------------------------


def transition_errors(events: list[dict[str, Any]]) -> list[str]:
    """Every transition event that the tables of orchestrator.states do not allow, or
    whose ``from`` is not where the run (or step) was: empty when the history is legal."""
    problems: list[str] = []
    where: dict[str | None, str | None] = {}
    for e in events:
        if "to" not in e:
            continue  # notes (compensation started, retries of map elements, waits)
        step, src, dst = e.get("step"), e["from"], e["to"]
        if src is None:
            # Creation: a run starts PENDING; a resumed run's steps are restored as they were.
            ok = dst == "PENDING" if step is None else "restored_from" in e
        elif e.get("reopened"):  # an operator's `orch compensate`: the operator-only tables
            ok = (
                RunState(dst) in RUN_REOPEN.get(RunState(src), ())
                if step is None
                else StepState(dst) in STEP_REOPEN.get(StepState(src), ())
            )
        elif step is None:
            ok = RunState(dst) in RUN_TRANSITIONS[RunState(src)]
        else:
            ok = StepState(dst) in STEP_TRANSITIONS[StepState(src)]
        before = where.get(step, None if step is None else "PENDING")
        if src is not None and src != before:
            problems.append(f"{e}: from {src} but it was {before}")
        if not ok:
            problems.append(f"illegal: {e}")
        where[step] = dst
    return problems


def succeeded_order(events: list[dict[str, Any]]) -> list[str]:
    """Steps in the order they completed (their SUCCEEDED events)."""
    return [e["step"] for e in events if e.get("step") and e.get("to") == "SUCCEEDED"]


def step_moves(events: list[dict[str, Any]], to: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("step") and e.get("to") == to]


def run_moves(events: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    return [(e["from"], e["to"]) for e in events if "step" not in e and "to" in e]


def run_entered(events: list[dict[str, Any]], state: str) -> float:
    times = [e["t"] for e in events if "step" not in e and e.get("to") == state]
    assert len(times) == 1, f"run entered {state} {len(times)} times: {run_moves(events)}"
    return float(times[0])


@dataclass
class Ledgers:
    """What the steps and compensations of one run recorded (tests.steps.saga_checks)."""

    undone: list[str]  # compensation effects, in the order they happened
    undo_calls: dict[str, int]  # compensation bodies run, per step
    undo_starts: list[tuple[str, float]]
    executions: dict[str, int]  # step bodies run, per step
    starts: list[tuple[str, float]]
    bad: list[str]  # what a compensation found wrong in its own inputs

    @classmethod
    def read(cls, r: redis.Redis, run_id: str) -> Ledgers:
        def timed(key: str) -> list[tuple[str, float]]:
            return [(d["step"], d["t"]) for d in map(json.loads, r.lrange(key, 0, -1))]

        return cls(
            undone=r.lrange(f"sagac:undone:{run_id}", 0, -1),
            undo_calls={k: int(v) for k, v in r.hgetall(f"sagac:undo-calls:{run_id}").items()},
            undo_starts=timed(f"sagac:undo-starts:{run_id}"),
            executions={k: int(v) for k, v in r.hgetall(f"sagac:exec:{run_id}").items()},
            starts=timed(f"sagac:starts:{run_id}"),
            bad=r.lrange(f"sagac:bad:{run_id}", 0, -1),
        )


def check_saga(
    run: Run, doc: dict[str, Any], r: redis.Redis, compensable: set[str]
) -> tuple[list[str], Ledgers]:
    """The saga invariant; returns the compensated steps (in the order undone) and the ledgers.

    Compensated = exactly the compensable steps that succeeded, each once, latest
    completion first, one at a time, and only once no attempt was in flight.
    """
    events = run.events()
    assert transition_errors(events) == [], events
    done = succeeded_order(events)
    assert len(done) == len(set(done)), f"a step succeeded twice: {done}"
    expected = [s for s in reversed(done) if s in compensable]
    led = Ledgers.read(r, run.id)
    assert led.bad == [], led.bad
    assert led.undone == expected, (
        f"compensated {led.undone}, expected {expected} (completion order {done})"
    )
    assert led.undo_calls == {s: 1 for s in expected}, led.undo_calls
    assert [e["step"] for e in step_moves(events, "COMPENSATED")] == expected
    # One at a time: each compensation ends before the next one starts.
    saga = [
        (e["step"], e["to"])
        for e in events
        if e.get("step") and e.get("to") in ("COMPENSATING", "COMPENSATED")
    ]
    assert saga == [(s, st) for s in expected for st in ("COMPENSATING", "COMPENSATED")], saga
    if expected:
        # In-flight attempts drained first: no attempt ended after the saga began.
        first = events.index(step_moves(events, "COMPENSATING")[0])
        late = [e for e in events[first:] if e.get("step") and e.get("from") == "RUNNING"]
        assert late == [], f"attempts ended during the saga: {late}"
    for s in compensable:
        state = doc["steps"][s]["state"]
        if s in expected:
            assert state == "COMPENSATED", (s, doc["steps"][s])
        else:
            assert state not in ("SUCCEEDED", "COMPENSATING", "COMPENSATED"), (s, state)
    # Nothing was claimed once the run had stopped running.
    stopped = [e["t"] for e in events if "step" not in e and e.get("from") == "RUNNING"]
    if stopped:
        late_claims = [e for e in step_moves(events, "RUNNING") if e["t"] > stopped[0]]
        assert late_claims == [], f"steps claimed after the run stopped running: {late_claims}"
    return expected, led


def undo_of(step: str) -> str:
    return f"{C}:undo_{step}"


def wait_for(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.02)


# -- 1. random DAGs, one failing step -----------------------------------------


@st.composite
def saga_cases(draw: st.DrawFn) -> tuple[dict[str, list[str]], set[str], str, dict[str, float]]:
    n = draw(st.integers(3, 7))
    names = [f"s{i}" for i in range(n)]
    ups = {
        s: sorted(names[k] for k in draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        for i, s in enumerate(names)
    }
    compensable = {s for s in names if draw(st.booleans())}
    failing = draw(st.sampled_from(names))
    delays = {s: draw(st.sampled_from([0.0, 0.05, 0.2])) for s in names}
    return ups, compensable, failing, delays


DIAMOND = {"s0": [], "s1": ["s0"], "s2": ["s0"], "s3": ["s1", "s2"]}


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=saga_cases())
@example(case=(DIAMOND, {"s0", "s1", "s2"}, "s3", {"s1": 0.2}))  # parallel branches undone
@example(case=(DIAMOND, {"s0", "s3"}, "s0", {}))  # nothing completed: FAILED
@example(case=({"s0": [], "s1": [], "s2": ["s0"]}, {"s0", "s2"}, "s1", {"s0": 0.2, "s2": 0.2}))
def test_compensates_exactly_the_completed_steps_in_reverse_order(
    client: Client,
    r: redis.Redis,
    workers: WorkerPool,
    case: tuple[dict[str, list[str]], set[str], str, dict[str, float]],
) -> None:
    """Random DAGs of 3-7 steps, some compensable, one failing for good: the undone
    steps are exactly the compensable ones that succeeded (including those still
    running when the failure came), each once, latest completion first."""
    ups, compensable, failing, delays = case
    before = client.store.reads.illegal_transitions()
    flow = Flow(f"saga-{uuid.uuid4().hex[:10]}", 1)
    for s, after in ups.items():
        fields: dict[str, Any] = {"after": after}
        if s in compensable:
            fields["compensate"] = undo_of(s)
        flow.step(s, f"{C}:boom" if s == failing else f"{C}:jitter", **fields)
    run = client.submit(flow.build(), {"delays": delays})
    doc = run.wait(WAIT)

    undone, led = check_saga(run, doc, r, compensable)
    assert doc["steps"][failing]["state"] == "FAILED"
    assert doc["error"] == f"step {failing} failed: NonRetryableError: {failing} cannot go on"
    assert doc["state"] == ("COMPENSATED" if undone else "FAILED"), (doc["state"], undone)
    moves = run_moves(run.events())
    if undone:
        assert moves == [(None, "PENDING"), ("PENDING", "RUNNING"),
                         ("RUNNING", "COMPENSATING"), ("COMPENSATING", "COMPENSATED")]  # fmt: skip
    else:
        assert moves == [(None, "PENDING"), ("PENDING", "RUNNING"), ("RUNNING", "FAILED")]
    assert all(n == 1 for n in led.executions.values()), led.executions
    assert client.store.reads.illegal_transitions() == before


# -- 2. cancel at different moments -------------------------------------------

CANCEL_MOMENTS = ["before_start", "right_after_submit", "mid_step", "during_compensation", "twice"]

RANK = {s: k for k, s in enumerate(["RUNNING", "COMPENSATING", "CANCELLING", "CANCELLED"])}


def cancel_flow(moment: str, name: str, idle_queue: str) -> Workflow:
    """s0 → s1 → s2 → s3, every step compensable; what each step does depends on the moment."""
    kinds = {
        "before_start": ["work", "work", "work", "work"],
        "right_after_submit": ["long_work", "work", "work", "work"],
        "mid_step": ["work", "long_work", "work", "work"],
        "twice": ["work", "long_work", "work", "work"],
        "during_compensation": ["work", "work", "boom", "work"],
    }[moment]
    flow = Flow(name, 1)
    for k, kind in enumerate(kinds):
        s = f"s{k}"
        fields: dict[str, Any] = {"after": [f"s{k - 1}"] if k else [], "compensate": undo_of(s)}
        if moment == "before_start" and k == 0:
            fields["queue"] = idle_queue  # no worker consumes it: s0 never starts
        flow.step(s, f"{C}:{kind}", **fields)
    return flow.build()


@pytest.mark.parametrize("moment", CANCEL_MOMENTS)
def test_cancel(
    client: Client,
    r: redis.Redis,
    workers: WorkerPool,
    wf_name: str,
    moment: str,
    illegal: None,
) -> None:
    idle_queue = f"nobody-{uuid.uuid4().hex[:8]}"
    wf = cancel_flow(moment, wf_name, idle_queue)
    run = client.submit(wf, {"long_delay": 20.0, "undo_delay": 1.0})
    replies: list[str] = []
    try:
        if moment in {"mid_step", "twice"}:
            wait_for(lambda: "s1" in Ledgers.read(r, run.id).executions, "s1 started")
        elif moment == "during_compensation":
            wait_for(lambda: Ledgers.read(r, run.id).undo_starts, "first compensation started")
            assert run.state() == "COMPENSATING"
        replies.append(run.cancel("test"))
        if moment == "twice":
            replies.append(run.cancel("again"))
        doc = run.wait(WAIT)
    finally:
        r.delete(*priority_lists(idle_queue))  # messages left for the queue nobody consumes

    assert doc["state"] == "CANCELLED", (doc["state"], doc["error"])
    undone, led = check_saga(run, doc, r, set(wf.steps))
    events = run.events()
    assert replies[0] in ("CANCELLING", "CANCELLED"), replies
    assert all(RANK[b] >= RANK[a] for a, b in itertools.pairwise(replies)), replies
    cancelling = run_entered(events, "CANCELLING")
    cancelled = run_entered(events, "CANCELLED")
    # No step body starts after the run is CANCELLED (bodies' own clocks), and no
    # step is even claimed after it began CANCELLING (Redis time, same script order).
    assert all(t <= cancelled for _, t in led.starts), (led.starts, cancelled)
    claims = step_moves(events, "RUNNING")
    assert all(e["t"] <= cancelling for e in claims), (claims, cancelling)
    assert len(run_moves(events)) == len(set(run_moves(events))), run_moves(events)

    if moment == "before_start":
        assert replies == ["CANCELLED"]
        assert led.executions == {} and undone == []
        assert doc["steps"]["s0"]["state"] == "QUEUED"
    elif moment in ("mid_step", "twice"):
        # s1 was running: it stopped early, succeeded, and was undone with s0; s2 never ran.
        assert undone == ["s1", "s0"], undone
        assert led.executions == {"s0": 1, "s1": 1}, led.executions
        assert doc["steps"]["s2"]["state"] == "PENDING"
    elif moment == "during_compensation":
        assert replies == ["CANCELLING"]
        assert undone == ["s1", "s0"]
        assert run_moves(events)[2:] == [
            ("RUNNING", "COMPENSATING"),
            ("COMPENSATING", "CANCELLING"),
            ("CANCELLING", "CANCELLED"),
        ]
        assert cancelling < led.undo_starts[-1][1], "the cancel came after the saga had ended"
    else:  # right_after_submit: s0 may or may not have started; the invariant says it all
        assert undone in ([], ["s0"]), undone

    # Cancelling again changes nothing: same terminal state, same history.
    history = run.events()
    assert run.cancel("late") == "CANCELLED"
    assert run.events() == history
    assert run.status() == doc


def test_cancelling_a_finished_run_returns_its_terminal_state(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    ok = Flow(wf_name, 1).step("s0", f"{C}:work", compensate=undo_of("s0")).build()
    compensated = (
        Flow(wf_name + "-c", 1)
        .step("s0", f"{C}:work", compensate=undo_of("s0"))
        .step("s1", f"{C}:boom", after=["s0"])
        .build()
    )
    failed = Flow(wf_name + "-f", 1).step("s0", f"{C}:boom").build()
    for wf, state in ((ok, "SUCCEEDED"), (compensated, "COMPENSATED"), (failed, "FAILED")):
        run = client.submit(wf, {})
        doc = run.wait(WAIT)
        assert doc["state"] == state, doc
        history = run.events()
        assert client.cancel(run.id, "too late") == state
        assert run.cancel() == state
        assert run.status() == doc and run.events() == history
    assert Ledgers.read(r, run.id).undone == []
    with pytest.raises(NotFoundError):
        client.cancel("0000000000000000")


# -- 3. a compensation whose worker is killed ----------------------------------

LEASE = 2.0


@dataclass
class PrivateEnv:
    server: EmbeddedRedis
    pool: WorkerPool
    client: Client
    r: redis.Redis
    queue: str
    tmp: Path


@pytest.fixture
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateEnv]:
    """Its own redis-server and two workers of one prefork child each, 2 s leases."""
    queue = f"saga-{uuid.uuid4().hex[:8]}"
    with private_cluster(tmp_path, queue=queue, processes=2, concurrency=1, lease=LEASE) as c:
        monkeypatch.setenv("ORCH_REDIS_URL", c.server.url)
        yield PrivateEnv(c.server, c.pool, c.client, c.r, queue, tmp_path)


def test_killed_compensation_is_run_again_and_its_effect_happens_once(
    private: PrivateEnv,
) -> None:
    """SIGKILL the prefork child running a compensation: its lease runs out, the sweeper
    records WorkerLostError, the compensation runs again, and the saga still ends
    COMPENSATED with every keyed effect written exactly once."""
    db = private.tmp / "effects.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE effects(key TEXT PRIMARY KEY)")
    q = private.queue
    fast = {"max_attempts": 3, "initial": 0.1, "max": 0.5}
    wf = (
        Flow(f"saga-kill-{uuid.uuid4().hex[:8]}", 1)
        .step("s0", f"{C}:work", queue=q, compensate=f"{C}:undo_ledger", retry=fast)
        .step("s1", f"{C}:work", after=["s0"], queue=q, compensate=f"{C}:undo_ledger", retry=fast)
        .step("s2", f"{C}:boom", after=["s1"], queue=q)
        .build()
    )
    run = private.client.submit(wf, {"db": str(db), "undo_delay": 3.0})

    def where() -> list[dict[str, Any]]:
        return [json.loads(x) for x in private.r.lrange(f"sagac:where:{run.id}", 0, -1)]

    wait_for(lambda: any(w["step"] == "s1" for w in where()), "compensation of s1 started", 30)
    (first,) = where()
    assert first["step"] == "s1" and first["attempt"] == 1, first
    assert first["ppid"] in {w.pid for w in private.pool.workers}, first
    os.kill(first["pid"], signal.SIGKILL)

    deadline = time.monotonic() + WAIT
    while (doc := run.status())["state"] not in TERMINAL:
        assert time.monotonic() < deadline, json.dumps(doc, indent=1)
        time.sleep(0.1)
    assert doc["state"] == "COMPENSATED", (doc["state"], doc["error"])
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        keys = sorted(k for (k,) in conn.execute("SELECT key FROM effects"))
    assert keys == [f"{run.id}/s0/undo", f"{run.id}/s1/undo"], keys
    calls = {k: int(v) for k, v in private.r.hgetall(f"sagac:undo-calls:{run.id}").items()}
    assert calls["s1"] >= 2, calls
    assert calls["s0"] >= 1, calls
    events = run.events()
    assert transition_errors(events) == [], events
    assert [e["step"] for e in step_moves(events, "COMPENSATED")] == ["s1", "s0"]
    notes = [e for e in events if e.get("compensation") and e.get("step") == "s1"]
    retries = [e for e in notes if e["compensation"] == "retry"]
    assert retries and "WorkerLostError" in retries[0]["error"], notes
    assert [w["step"] for w in where()].count("s1") == calls["s1"]
    assert private.r.zrange("orch:leases", 0, -1) == []
    assert private.client.store.reads.illegal_transitions() == {}
    print(f"\nobserved: killed compensation of s1 ran {calls['s1']} times, s0's {calls['s0']}")


# -- 4. resume a failed run after a fix ----------------------------------------


def resume_flow(name: str) -> Workflow:
    return (
        Flow(name, 1)
        .step("a", f"{SAGA}:effect")
        .step("b", f"{SAGA}:effect", after=["a"])
        .step("x", f"{SAGA}:fails_until_fixed", after=["b"])
        .step("y", f"{SAGA}:effect", after=["x"])
        .build()
    )


def saga_exec(r: redis.Redis, run_id: str) -> dict[str, int]:
    return {k: int(v) for k, v in r.hgetall(f"saga:exec:{run_id}").items()}


def test_retry_resumes_a_failed_run_from_the_failed_step(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    wf = resume_flow(wf_name)
    first, second = client.submit(wf, {}), client.submit(wf, {})
    for run in (first, second):
        doc = run.wait(WAIT)
        assert doc["state"] == "FAILED", doc
        assert doc["error"] == "step x failed: NonRetryableError: not fixed yet"
        assert saga_exec(r, run.id) == {"a": 1, "b": 1, "x": 1}
    old_doc = first.status()
    r.set(f"saga:fixed:{wf_name}", "1")

    new = client.retry(first.id)
    assert new.id != first.id
    doc = new.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc
    assert doc["result"] == "did y"
    assert (doc["workflow"], doc["version"]) == (wf_name, 1)
    assert saga_exec(r, first.id) == {"a": 1, "b": 1, "x": 1}, "the old run ran again"
    assert saga_exec(r, new.id) == {"x": 1, "y": 1}, "completed steps were run again"
    for s in ("a", "b"):
        kept = doc["steps"][s]
        assert kept["state"] == "SUCCEEDED" and kept["output"] == f"did {s}", kept
        assert kept["attempts"] == 1 and kept["finished_at"] == old_doc["steps"][s]["finished_at"]
    assert doc["steps"]["x"]["output"] == "fixed" and doc["steps"]["x"]["attempts"] == 1
    assert doc["input"] == old_doc["input"]
    # The old run is unchanged (terminal states never change) and the two are linked.
    assert first.status() == old_doc
    fields = client.store.reads.run_fields(first.id)
    assert fields["resumed_as"] == new.id
    assert client.store.reads.run_fields(new.id)["resumed_from"] == first.id
    events = new.events()
    assert transition_errors(events) == [], events
    restored = [(e["step"], e["to"]) for e in events if e.get("restored_from") == first.id]
    assert restored == [("a", "SUCCEEDED"), ("b", "SUCCEEDED")]
    assert not [e for e in step_moves(events, "RUNNING") if e["step"] in ("a", "b")]

    assert client.retry(first.id).id == new.id, "resuming twice gave another run"
    with pytest.raises(OrchestratorError, match="SUCCEEDED; only a FAILED run can be resumed"):
        client.retry(new.id)
    with pytest.raises(NotFoundError):
        client.retry("0000000000000000")

    # The same through the CLI.
    cli = [sys.executable, "-m", "orchestrator"]
    done = subprocess.run(
        [*cli, "retry", second.id, "--wait", "--json"],
        capture_output=True, text=True, env=dict(os.environ), timeout=WAIT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli_doc = json.loads(done.stdout)
    assert cli_doc["state"] == "SUCCEEDED" and cli_doc["id"] != second.id, cli_doc
    assert client.store.reads.run_fields(cli_doc["id"])["resumed_from"] == second.id
    assert saga_exec(r, cli_doc["id"]) == {"x": 1, "y": 1}
    assert saga_exec(r, second.id) == {"a": 1, "b": 1, "x": 1}
    cancelled = subprocess.run(
        [*cli, "cancel", cli_doc["id"], "--json"],
        capture_output=True, text=True, env=dict(os.environ), timeout=WAIT, check=False,
    )  # fmt: skip
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout) == {"id": cli_doc["id"], "state": "SUCCEEDED"}
    again = subprocess.run(
        [*cli, "retry", cli_doc["id"], "--json"],
        capture_output=True, text=True, env=dict(os.environ), timeout=WAIT, check=False,
    )  # fmt: skip
    assert again.returncode != 0 and "only a FAILED run can be resumed" in again.stderr


def test_a_resumed_run_keeps_the_map_inputs_it_was_given(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    """A kept step's list, mapped over by a step that was not run, is copied into the
    new run; it must live as long as the new run, not expire with the old one (which
    was due to expire: its TTL runs from when it failed)."""
    wf = (
        Flow(wf_name, 1)
        .step("seq", "tests.steps.basic:seq")
        .step("x", f"{SAGA}:fails_until_fixed", after=["seq"])
        .step("gate", wait_for="go", after=["x"])
        .step("square", "tests.steps.basic:square", map="seq", after=["gate"])
        .build()
    )
    old = client.submit(wf, {"n": 3})
    assert old.wait(WAIT)["state"] == "FAILED"
    r.expire(f"orch:run:{old.id}:items:seq", 1)  # the old run is about to expire
    r.set(f"saga:fixed:{wf_name}", "1")
    new = client.retry(old.id)
    wait_for(lambda: new.status()["steps"]["gate"]["state"] == "WAITING", "gate waiting")
    time.sleep(1.5)  # the old run's copy of `seq`'s items is gone by now
    client.signal(new.id, "go", {})
    doc = new.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == [0, 1, 4]


def test_a_run_that_compensated_nothing_ends_failed(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("s0", f"{C}:fails_late", compensate=undo_of("s0"))
        .step("s1", f"{C}:boom_once_s0_runs")
        .build()
    )
    run = client.submit(wf, {"late_delay": 1.0})
    doc = run.wait(WAIT)
    assert doc["steps"]["s0"]["state"] == "FAILED" and doc["steps"]["s1"]["state"] == "FAILED"
    undone, _ = check_saga(run, doc, r, {"s0"})
    assert undone == []
    assert doc["state"] == "FAILED", f"{doc['state']} although nothing was compensated"


def test_cli_cancel_of_a_running_run(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("s0", f"{C}:work", compensate=undo_of("s0"))
        .step("s1", wait_for="go", after=["s0"])
        .build()
    )
    run = client.submit(wf, {})
    wait_for(lambda: run.status()["steps"]["s1"]["state"] == "WAITING", "s1 waiting")
    cmd = [sys.executable, "-m", "orchestrator", "cancel", run.id, "--json"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ), timeout=WAIT, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["state"] in ("CANCELLING", "CANCELLED")
    doc = run.wait(WAIT)
    assert doc["state"] == "CANCELLED"
    undone, _ = check_saga(run, doc, r, {"s0"})
    assert undone == ["s0"]
    with pytest.raises(OrchestratorError, match="CANCELLED"):
        client.signal(run.id, "go", {})


# -- 5. runs keep the version they started with -------------------------------


def test_runs_keep_their_workflow_version(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    v1 = (
        Flow(wf_name, 1)
        .step("s0", f"{C}:work")
        .step("gate", wait_for="go", after=["s0"])
        .step("s1", f"{C}:work", after=["gate"])
        .build()
    )
    v2 = (
        Flow(wf_name, 2)
        .step("s0", f"{C}:work")
        .step("s2", f"{C}:work", after=["s0"])
        .step("s3", f"{C}:work", after=["s2"])
        .build()
    )
    old = client.submit(v1, {})
    wait_for(lambda: old.status()["steps"]["gate"]["state"] == "WAITING", "v1 run waiting")
    client.register(v2)
    newer = [client.submit(v2, {}) for _ in range(2)] + [client.submit(wf_name, {})]
    for run in newer:
        doc = run.wait(WAIT)
        assert doc["state"] == "SUCCEEDED" and doc["version"] == 2, doc
        assert set(doc["steps"]) == {"s0", "s2", "s3"}
        assert Ledgers.read(r, run.id).executions == {"s0": 1, "s2": 1, "s3": 1}
    assert old.state() == "RUNNING"
    client.signal(old.id, "go", {"ok": True})
    doc = old.wait(WAIT)
    assert doc["state"] == "SUCCEEDED" and doc["version"] == 1, doc
    assert set(doc["steps"]) == {"s0", "gate", "s1"}
    assert doc["result"] == f"out:{old.id}:s1"
    assert Ledgers.read(r, old.id).executions == {"s0": 1, "s1": 1}
    assert transition_errors(old.events()) == []

    listed = {d["id"]: d["version"] for d in client.runs(workflow=wf_name, limit=50)}
    assert listed == {old.id: 1, **{run.id: 2 for run in newer}}, listed
    assert {d["id"] for d in client.runs(workflow=wf_name, state="SUCCEEDED")} == set(listed)

    changed = Flow(wf_name, 1).step("s0", f"{C}:work").step("s9", f"{C}:work").build()
    with pytest.raises(WorkflowConflictError, match="bump the version"):
        client.submit(changed, {})
    with pytest.raises(WorkflowConflictError):
        Client(client.url).register(changed)
    # The same content again is fine, and gives version 1's graph.
    again = client.submit(v1, {})
    assert again.status()["version"] == 1
    assert client.cancel(again.id) in ("CANCELLING", "CANCELLED")
    assert again.wait(WAIT)["state"] == "CANCELLED"


# -- 6. a compensation that fails for good -------------------------------------


def saga_whose_s1_undo_fails(name: str, undo_s1: str) -> Workflow:
    """s0 → s1 → s2 → s3, where s3 fails for good and s1's compensation is ``undo_s1``
    (two attempts): the saga undoes s2, then meets s1."""
    return (
        Flow(name, 1)
        .step("s0", f"{C}:work", compensate=undo_of("s0"))
        .step(
            "s1",
            f"{C}:work",
            after=["s0"],
            compensate=f"{C}:{undo_s1}",
            retry={"max_attempts": 2, "initial": 0.1, "max": 0.2},
        )
        .step("s2", f"{C}:work", after=["s1"], compensate=undo_of("s2"))
        .step("s3", f"{C}:boom", after=["s2"])
        .build()
    )


def test_a_failing_compensation_stops_the_saga(
    client: Client, r: redis.Redis, workers: WorkerPool, wf_name: str, illegal: None
) -> None:
    run = client.submit(saga_whose_s1_undo_fails(wf_name, "undo_always_fails"), {})
    doc = run.wait(WAIT)
    assert doc["state"] == "COMPENSATION_FAILED", doc
    assert doc["error"] == "compensation of step s1 failed: RuntimeError: cannot undo s1"
    states = {s: doc["steps"][s]["state"] for s in doc["steps"]}
    assert states == {
        "s0": "SUCCEEDED",
        "s1": "COMPENSATION_FAILED",
        "s2": "COMPENSATED",
        "s3": "FAILED",
    }
    assert doc["steps"]["s1"]["error"] == "RuntimeError: cannot undo s1"
    led = Ledgers.read(r, run.id)
    assert led.undone == ["s2"], "s0 was compensated after s1's compensation failed"
    assert led.undo_calls == {"s2": 1, "s1": 2}, led.undo_calls
    events = run.events()
    assert transition_errors(events) == [], events
    s1 = [e for e in events if e.get("step") == "s1" and e.get("compensation")]
    assert [(e["compensation"], e["attempt"]) for e in s1] == [
        ("started", 1), ("retry", 1), ("started", 2),
    ]  # fmt: skip
    assert run_moves(events)[-2:] == [
        ("RUNNING", "COMPENSATING"),
        ("COMPENSATING", "COMPENSATION_FAILED"),
    ]
    assert run.cancel() == "COMPENSATION_FAILED"
