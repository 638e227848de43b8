"""The engine end to end: dependencies, maps, handoffs, payloads, idempotency,
status, transitions, retries and expiry, on real Redis and real Celery workers."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis

from orchestrator import Client, Flow, NotFoundError, PayloadTooLargeError, Settings
from orchestrator.embedded import EmbeddedRedis
from orchestrator.keys import Keys
from orchestrator.states import (
    RUN_TERMINAL,
    RunState,
    StepState,
    run_transition_allowed,
    step_transition_allowed,
)
from tests.conftest import executions
from tests.integration.helpers import (
    NAMES,
    NODE,
    WAIT,
    WEIGHTS,
    entered,
    expect_executions,
    expected_values,
    node_flow,
    only_start,
    path,
    run_events,
    run_ids_of,
    starts_by_step,
    step_events,
    succeeded_at,
    wait_until,
)
from workers.pool import WorkerPool

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("workers")]


def random_dag(seed: int) -> dict[str, list[str]]:
    """Eight steps a..h: two roots, random earlier upstreams, h joins every sink."""
    rng = random.Random(seed)
    ups: dict[str, list[str]] = {"a": [], "b": []}
    for i, s in enumerate(NAMES[2:7], start=2):
        ups[s] = sorted(rng.sample(NAMES[:i], rng.randint(1, min(3, i))))
    sinks = [s for s in NAMES[:7] if not any(s in u for u in ups.values())]
    while len(sinks) < 2:
        sinks = sorted({*sinks, rng.choice(NAMES[:7])})
    ups["h"] = sinks
    return ups


# -- (1) dependencies, exactly once, outputs to the right parameters ------------


@pytest.mark.parametrize("seed", [7, 2024])
def test_every_step_runs_once_after_all_its_upstreams(
    client: Client, r: redis.Redis, wf_name: str, seed: int
) -> None:
    ups = random_dag(seed)
    run = client.submit(node_flow(wf_name, ups).build(), {"weights": WEIGHTS})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", (ups, doc["error"])

    values = expected_values(ups)
    assert doc["result"] == {
        "step": "h", "value": values["h"], "got": {u: u for u in ups["h"]}, "attempt": 1,
    }  # fmt: skip
    for s, after in ups.items():
        out = doc["steps"][s]["output"]
        # each upstream output arrived in the parameter named after it, and only those
        assert out["got"] == {u: u for u in after}, (s, ups)
        assert out["value"] == values[s], (s, ups)
    expect_executions(r, run, list(ups))

    events = run.events()
    starts = starts_by_step(r, run.id)
    for s, after in ups.items():
        started = only_start(starts, s)
        queued = entered(events, s, "QUEUED")
        assert len(queued) == 1, (s, step_events(events, s))
        for u in after:
            done = succeeded_at(events, u)
            assert queued[0] >= done, f"{s} was queued before its upstream {u} succeeded"
            assert started >= done, f"{s} started before its upstream {u} succeeded"


# -- (2) no barrier the graph lacks --------------------------------------------


def test_non_series_parallel_graph_has_no_extra_barrier(
    client: Client, r: redis.Redis, wf_name: str
) -> None:
    """a→c, a→d, b→d, b→e with b slow: c must not wait for b; d and e must."""
    ups = {"a": [], "b": [], "c": ["a"], "d": ["a", "b"], "e": ["b"]}
    run = client.submit(node_flow(wf_name, ups).build(), {"weights": WEIGHTS, "sleeps": {"b": 1.5}})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert set(doc["result"]) == {"c", "d", "e"}
    assert doc["result"]["d"]["got"] == {"a": "a", "b": "b"}
    assert doc["result"]["c"]["got"] == {"a": "a"}
    assert doc["result"]["e"]["got"] == {"b": "b"}

    events = run.events()
    starts = starts_by_step(r, run.id)
    b_done = succeeded_at(events, "b")
    assert only_start(starts, "c") < b_done, "c waited for b, which it does not depend on"
    assert succeeded_at(events, "c") < b_done
    assert only_start(starts, "d") >= b_done
    assert only_start(starts, "e") >= b_done
    assert only_start(starts, "d") >= succeeded_at(events, "a")
    expect_executions(r, run, list(ups))


# -- (3) maps ------------------------------------------------------------------


def map_flow(name: str) -> Flow:
    return (
        Flow(name, 1)
        .step("seq", "tests.steps.basic:seq")
        .step("square", "tests.steps.basic:square", map="seq", queue="embed")
        .step("sum_list", "tests.steps.basic:sum_list", after=["square"])
    )


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_map_over_n_elements(client: Client, r: redis.Redis, wf_name: str, n: int) -> None:
    run = client.submit(map_flow(wf_name).build(), {"n": n})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == sum(i * i for i in range(n))
    square = doc["steps"]["square"]
    assert square["state"] == "SUCCEEDED"
    assert square["output"] == [i * i for i in range(n)], "mapped output not in input order"
    assert square["elements"] == n
    expected = {f"{run.id}/seq": 1, f"{run.id}/sum_list": 1}
    expected.update({f"{run.id}/square/{i}": 1 for i in range(n)})
    assert executions(r, run.id) == expected
    # the items hash is the map's input; the parts hash is gone once the run ended
    keys = Keys(client.settings.key_prefix)
    assert r.exists(f"{keys.run(run.id)}:parts:square") == 0


# -- (4) typed handoffs ----------------------------------------------------------


def test_handoff_mismatch_fails_at_once_naming_the_edge(
    client: Client, r: redis.Redis, wf_name: str
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("fetch", "tests.steps.basic:fetch")
        .step("wants_int", "tests.steps.basic:wants_int", after=["fetch"])
        .build()
    )
    run = client.submit(wf, {"url": "https://example.org/a"})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED"
    step = doc["steps"]["wants_int"]
    assert step["state"] == "FAILED"
    assert step["attempts"] == 1, "a handoff mismatch must not be retried"
    assert step["error"].startswith("HandoffError: handoff fetch → wants_int:"), step["error"]
    assert "fetch → wants_int" in doc["error"]
    assert path(run.events(), "wants_int") == ["PENDING", "QUEUED", "RUNNING", "FAILED"]
    # the body never ran: validation happens before the call
    assert executions(r, run.id) == {f"{run.id}/fetch": 1}
    stats = client.stats(wf_name, 1)
    assert stats.get("bad:fetch → wants_int") == 1, stats
    assert stats.get("ok:fetch") == 1, stats
    assert "ok:wants_int" not in stats


def test_valid_handoffs_are_counted_per_step(client: Client, wf_name: str) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("fetch", "tests.steps.basic:fetch")
        .step("length", "tests.steps.basic:length", after=["fetch"])
        .build()
    )
    runs = [client.submit(wf, {"url": f"https://example.org/{i}"}) for i in range(3)]
    for i, run in enumerate(runs):
        assert run.result(WAIT) == len(f"text of https://example.org/{i}")
    stats = client.stats(wf_name, 1)
    assert stats == {"ok:fetch": 3, "ok:length": 3}


# -- (5) payload cap -----------------------------------------------------------


def test_output_over_payload_cap_fails_with_a_clear_error(
    client: Client, r: redis.Redis, wf_name: str
) -> None:
    wf = (
        Flow(wf_name, 1, retry={"max_attempts": 2, "initial": 0.05, "max": 0.1})
        .step("big", "tests.steps.dag:big")
        .build()
    )
    run = client.submit(wf, {"size": 1_200_000})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED"
    limit = Settings().max_payload_bytes
    assert limit == 1024 * 1024
    msg = f"step 'big': output is 1200002 bytes, above ORCH_MAX_PAYLOAD_BYTES={limit}"
    assert doc["steps"]["big"]["error"] == f"PayloadTooLargeError: {msg}"
    assert doc["error"] == f"step big failed: PayloadTooLargeError: {msg}"
    # refused, never truncated: nothing of the output was stored
    assert doc["steps"]["big"]["output"] is None
    assert doc["steps"]["big"]["attempts"] == 1, "retrying cannot shrink an output"
    assert doc["result"] is None
    assert not r.hexists(Keys().run(run.id), "big.out")


def test_mapped_output_over_payload_cap_fails(client: Client, wf_name: str) -> None:
    """Each element is under the cap; their joined list is not."""
    wf = (
        Flow(wf_name, 1)
        .step("seq", "tests.steps.basic:seq")
        .step("chunky", "tests.steps.dag:chunky", map="seq")
        .step("sum_list", "tests.steps.basic:length", after=["chunky"])
        .build()
    )
    run = client.submit(wf, {"n": 3, "size": 400_000})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED"
    chunky = doc["steps"]["chunky"]
    assert chunky["state"] == "FAILED"
    assert chunky["output"] is None
    assert chunky["error"].startswith("PayloadTooLargeError: mapped output is "), chunky
    assert chunky["error"].endswith("bytes, above ORCH_MAX_PAYLOAD_BYTES=1048576")
    assert doc["steps"]["sum_list"]["state"] == "PENDING"


def test_input_over_payload_cap_is_refused_at_submit(client: Client, wf_name: str) -> None:
    wf = Flow(wf_name, 1).step("big", "tests.steps.dag:big").build()
    with pytest.raises(PayloadTooLargeError, match="ORCH_MAX_PAYLOAD_BYTES"):
        client.submit(wf, {"size": 1, "pad": "x" * 1_100_000})
    assert run_ids_of(client, wf.ref) == []


# -- (6) idempotent submit -----------------------------------------------------


def test_same_key_gives_the_same_run(client: Client, r: redis.Redis, wf_name: str) -> None:
    wf = Flow(wf_name, 1).step("a", NODE).build()
    first = client.submit(wf, {"weights": WEIGHTS}, key="order-1")
    again = client.submit(wf, {"weights": {"a": 99}}, key="order-1")
    assert again.id == first.id
    assert first.result(WAIT)["value"] == 2, "the second submit must not change the input"
    after = client.submit(wf, {"weights": WEIGHTS}, key="order-1")
    assert after.id == first.id, "a finished run still owns its key"
    other = client.submit(wf, {"weights": WEIGHTS}, key="order-2")
    assert other.id != first.id
    other.wait(WAIT)
    assert sorted(run_ids_of(client, wf.ref)) == sorted([first.id, other.id])
    expect_executions(r, first, ["a"])


def test_concurrent_submits_with_one_key_create_one_run(
    redis_server: EmbeddedRedis, r: redis.Redis, wf_name: str
) -> None:
    wf = Flow(wf_name, 1).step("a", NODE).step("b", NODE, after=["a"]).build()
    clients = [Client(redis_server.url) for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit(c: Client) -> None:
        try:
            barrier.wait(10)
            run = c.submit(wf, {"weights": WEIGHTS}, key="same")
            with lock:
                ids.append(run.id)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert not errors, errors
        assert len(ids) == 8 and len(set(ids)) == 1, ids
        run = clients[0].run(ids[0])
        assert run.wait(WAIT)["state"] == "SUCCEEDED"
        assert run_ids_of(clients[0], wf.ref) == [ids[0]]
        created = [e for e in run_events(run.events()) if e["to"] == "PENDING"]
        assert len(created) == 1
        expect_executions(r, run, ["a", "b"])
    finally:
        for c in clients:
            c.close()


# -- (7) the status document -----------------------------------------------------

RUN_KEYS = {"id", "workflow", "version", "state", "input", "result", "error",
            "created_at", "finished_at", "priority", "fairness_key", "steps"}  # fmt: skip
STEP_KEYS = {"state", "attempts", "queued_at", "started_at", "finished_at", "error", "output"}


def _time(value: str) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value)


def test_status_document_shape(client: Client, wf_name: str) -> None:
    wf = (
        Flow(wf_name, 3)
        .step("a", NODE)
        .step("b", NODE, after=["a"])
        .step("c", NODE, after=["a"], retry={"max_attempts": 3, "initial": 0.05})
        .step("seq", "tests.steps.basic:seq")
        .step("square", "tests.steps.basic:square", map="seq")
        .build()
    )
    run = client.submit(wf, {"weights": WEIGHTS, "flaky": {"c": 1}, "n": 4})
    early = run.status()
    assert set(early) == RUN_KEYS
    assert early["state"] == "RUNNING"
    assert early["finished_at"] is None and early["result"] is None

    doc = run.wait(WAIT)
    assert set(doc) == RUN_KEYS
    assert doc["id"] == run.id
    assert doc["workflow"] == wf_name
    assert doc["version"] == 3 and isinstance(doc["version"], int)
    assert doc["state"] == "SUCCEEDED"
    assert doc["input"] == {"weights": WEIGHTS, "flaky": {"c": 1}, "n": 4}
    steps = doc["steps"]
    assert doc["result"] == {f: steps[f]["output"] for f in ("b", "c", "square")}
    assert doc["error"] is None
    created, finished = _time(doc["created_at"]), _time(doc["finished_at"])
    assert created <= finished
    assert list(steps) == ["a", "b", "c", "seq", "square"], "topological order, ties by name"
    for name, st in steps.items():
        # a map step also carries its element count and how many are left (README)
        map_keys = STEP_KEYS | {"elements", "elements_left"}
        assert set(st) == (map_keys if name == "square" else STEP_KEYS), name
        assert st["state"] == "SUCCEEDED"
        assert st["error"] is None
        assert created <= _time(st["queued_at"]) <= _time(st["started_at"])
        assert _time(st["started_at"]) <= _time(st["finished_at"]) <= finished
    for name in "abc":
        assert steps[name]["output"]["step"] == name
    assert steps["a"]["attempts"] == 1
    assert steps["c"]["attempts"] == 2
    assert steps["c"]["output"]["attempt"] == 2
    assert steps["square"]["output"] == [0, 1, 4, 9]
    assert steps["square"]["elements"] == 4
    assert steps["square"]["elements_left"] == 0
    assert steps["square"]["attempts"] == 4, "a map step counts every element's attempts"


def test_status_document_of_a_failed_run(client: Client, wf_name: str) -> None:
    wf = Flow(wf_name, 1).step("a", NODE).step("b", NODE, after=["a"]).build()
    run = client.submit(wf, {"fail": ["a"]})
    doc = run.wait(WAIT)
    assert set(doc) == RUN_KEYS
    assert doc["state"] == "FAILED"
    assert doc["error"] == "step a failed: NonRetryableError: a failed on purpose"
    assert doc["result"] is None
    _time(doc["finished_at"])
    a, b = doc["steps"]["a"], doc["steps"]["b"]
    assert set(a) == set(b) == STEP_KEYS
    assert a["state"] == "FAILED" and a["error"] == "NonRetryableError: a failed on purpose"
    assert a["output"] is None
    _time(a["finished_at"])
    assert b == {"state": "PENDING", "attempts": 0, "queued_at": None, "started_at": None,
                 "finished_at": None, "error": None, "output": None}  # fmt: skip


# -- (8) every transition is legal ---------------------------------------------


def check_legal(events: list[dict[str, object]]) -> None:
    runs = run_events(events)
    assert runs[0]["from"] is None and runs[0]["to"] == "PENDING"
    for e in runs[1:]:
        src, dst = RunState(str(e["from"])), RunState(str(e["to"]))
        assert run_transition_allowed(src, dst), e
    assert RunState(str(runs[-1]["to"])) in RUN_TERMINAL
    current: dict[str, StepState] = {}
    for e in events:
        if "step" not in e or "to" not in e:
            continue
        name = str(e["step"])
        src, dst = StepState(str(e["from"])), StepState(str(e["to"]))
        assert src == current.get(name, StepState.PENDING), f"{name}: history skips a state: {e}"
        assert step_transition_allowed(src, dst), e
        current[name] = dst
    times = [float(str(e["t"])) for e in events]
    assert times == sorted(times), "events are not in time order"


def test_every_event_is_a_legal_transition(client: Client, wf_name: str) -> None:
    before = client.store.reads.illegal_transitions()
    flow = (
        Flow(wf_name, 1, retry={"max_attempts": 3, "initial": 0.05, "max": 0.2})
        .step("seq", "tests.steps.basic:seq")
        .step("flaky", "tests.steps.basic:flaky", after=["seq"])
        .step("square", "tests.steps.basic:square", map="seq")
        .step("sum_list", "tests.steps.basic:sum_list", after=["square", "flaky"])
    )
    good = client.submit(flow.build(), {"n": 20, "fail_times": 1})
    assert good.wait(WAIT)["state"] == "SUCCEEDED"
    bad_wf = (
        Flow(f"{wf_name}-bad", 1)
        .step("a", NODE)
        .step("b", NODE, after=["a"])
        .step("c", NODE, after=["a"])
        .step("d", NODE, after=["b", "c"])
        .build()
    )
    # b fails while c still runs (both start together on idle workers), so c's
    # success is recorded after its run has ended
    bad = client.submit(bad_wf, {"fail": ["b"], "sleeps": {"b": 0.3, "c": 1.0}})
    assert bad.wait(WAIT)["state"] == "FAILED"
    wait_until(lambda: bad.status()["steps"]["c"]["state"] == "SUCCEEDED", timeout=10)
    # two branches fail at the same moment: only the first may end the run
    both = client.submit(bad_wf, {"fail": ["b", "c"], "sleeps": {"b": 0.5, "c": 0.5}})
    assert both.wait(WAIT)["state"] == "FAILED"
    wait_until(lambda: {both.status()["steps"][s]["state"] for s in "bc"} == {"FAILED"}, 10)
    for run in (good, bad, both):
        events = run.events()
        check_legal(events)
        for name, st in run.status()["steps"].items():
            if st["state"] != "PENDING":
                assert StepState(path(events, name)[-1]) == StepState(st["state"])
    assert "RETRYING" in path(good.events(), "flaky")
    assert path(bad.events(), "c")[-1] == "SUCCEEDED"
    assert [e["to"] for e in run_events(both.events())] == ["PENDING", "RUNNING", "FAILED"]
    assert client.store.reads.illegal_transitions() == before


# -- (9) retries -------------------------------------------------------------------


def retry_flow(name: str, max_attempts: int) -> Flow:
    return Flow(name, 1).step(
        "flaky", "tests.steps.basic:flaky", retry={"max_attempts": max_attempts, "initial": 0.05}
    )


def test_retry_succeeds_on_the_last_allowed_attempt(
    client: Client, r: redis.Redis, wf_name: str
) -> None:
    run = client.submit(retry_flow(wf_name, 3).build(), {"fail_times": 2})
    doc = run.wait(WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == 3
    assert doc["steps"]["flaky"]["attempts"] == 3
    assert doc["steps"]["flaky"]["error"] is None, "a step that succeeded shows no error"
    events = run.events()
    assert path(events, "flaky") == [
        "PENDING", "QUEUED",
        "RUNNING", "RETRYING", "QUEUED",
        "RUNNING", "RETRYING", "QUEUED",
        "RUNNING", "SUCCEEDED",
    ]  # fmt: skip
    retrying = [e for e in step_events(events, "flaky") if e["to"] == "RETRYING"]
    assert [e["attempt"] for e in retrying] == [1, 2]
    assert [json.loads(e["error"])["message"] for e in retrying] == [
        "transient failure on attempt 1",
        "transient failure on attempt 2",
    ], "each failed attempt's error stays in the history"
    assert all(0 <= e["delay"] <= 0.1 + 1e-9 for e in retrying), retrying
    running = [e for e in step_events(events, "flaky") if e["to"] == "RUNNING"]
    assert [e["attempt"] for e in running] == [1, 2, 3]
    # the body ran three times under one idempotency key
    assert executions(r, run.id) == {f"{run.id}/flaky": 3}


def test_retry_gives_up_after_max_attempts(client: Client, wf_name: str) -> None:
    run = client.submit(retry_flow(wf_name, 2).build(), {"fail_times": 2})
    doc = run.wait(WAIT)
    assert doc["state"] == "FAILED"
    assert doc["steps"]["flaky"]["attempts"] == 2
    assert doc["error"] == "step flaky failed: RuntimeError: transient failure on attempt 2"
    assert path(run.events(), "flaky") == [
        "PENDING", "QUEUED", "RUNNING", "RETRYING", "QUEUED", "RUNNING", "FAILED",
    ]  # fmt: skip


# -- (10) expiry of finished runs ------------------------------------------------


@pytest.fixture
def ttl_pool(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A worker on a queue of its own whose finished runs expire after 2 s.

    The worker's TTL is the one that matters: the script that ends a run runs
    in the worker that recorded the last outcome.
    """
    queue = f"ttl-{uuid.uuid4().hex[:8]}"
    pool = WorkerPool(redis_server.url, log_dir=tmp_path / "logs", env={"ORCH_RUN_TTL": "2"})
    pool.start([queue], concurrency=2)
    try:
        yield queue, redis_server.url
    finally:
        died = [str(w.log_path) for w in pool.workers if w.process.poll() is not None]
        pool.stop()
    assert not died, f"a TTL worker exited during the test; see {died}"


def run_keys(r: redis.Redis, run_id: str) -> list[str]:
    return sorted(r.scan_iter(match=f"{Keys().run(run_id)}*"))


def test_finished_runs_expire_after_the_run_ttl(
    ttl_pool: tuple[str, str], r: redis.Redis, wf_name: str
) -> None:
    queue, url = ttl_pool
    wf = (
        Flow(wf_name, 1)
        .step("seq", "tests.steps.basic:seq", queue=queue)
        .step("square", "tests.steps.basic:square", map="seq", queue=queue)
        .step("sum_list", "tests.steps.basic:sum_list", after=["square"], queue=queue)
        .build()
    )
    with Client(url, settings=Settings(run_ttl=2)) as client:
        run = client.submit(wf, {"n": 3}, key="expiring")
        assert run.result(WAIT) == 5
        keys = run_keys(r, run.id)
        assert f"{Keys().run(run.id)}:events" in keys
        assert f"{Keys().run(run.id)}:items:seq" in keys
        idem = Keys().idempotency(wf_name, "expiring")
        for key in [*keys, idem]:
            assert 0 < r.pttl(key) <= 2000, (key, r.pttl(key))
        time.sleep(3.5)
        with pytest.raises(NotFoundError):
            client.run(run.id)
        assert run_keys(r, run.id) == []
        assert r.exists(idem) == 0
        assert run.id not in run_ids_of(client, wf.ref)
        # the key is free again: a new submit makes a new run
        again = client.submit(wf, {"n": 2}, key="expiring")
        assert again.id != run.id
        assert again.result(WAIT) == 1


def test_steps_finishing_after_a_failed_run_leave_no_keys(
    ttl_pool: tuple[str, str], r: redis.Redis, wf_name: str
) -> None:
    """Outcomes recorded after the run ended must not create keys without a TTL.

    b fails while seq, which square maps over, is still running: seq's output
    and its elements are recorded after the run failed and must expire with it.
    """
    queue, url = ttl_pool
    wf = (
        Flow(wf_name, 1)
        .step("b", NODE, queue=queue)
        .step("seq", "tests.steps.dag:slow_seq", queue=queue)
        .step("square", "tests.steps.basic:square", map="seq", queue=queue)
        .build()
    )
    with Client(url, settings=Settings(run_ttl=2)) as client:
        run = client.submit(wf, {"n": 3, "seq_delay": 1.2, "fail": ["b"], "sleeps": {"b": 0.3}})
        doc = run.wait(WAIT)
        assert doc["state"] == "FAILED"
        assert doc["steps"]["seq"]["state"] == "RUNNING", "seq was not in flight"
        wait_until(lambda: r.hget(Keys().run(run.id), "seq.state") == "SUCCEEDED", 10)
        assert r.hlen(f"{Keys().run(run.id)}:items:seq") == 3
        time.sleep(3.0)  # seq finished ~1 s after the run; every key expires by ~2 s after it
        assert run_keys(r, run.id) == []
