"""Engine hooks on real workers: every decision reaches the hooks, lanes included.

The workers run with ``ORCH_HOOKS`` naming a broken hook first and a
recording hook second (tests/steps/hooks.py), so each test also shows that a
hook that raises breaks neither the step nor the hooks after it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis
from tests.integration.helpers import WAIT, wait_until
from tests.steps.hooks import Raises, Recorder, heard
from workers.pool import WorkerPool

pytestmark = pytest.mark.integration

QUEUE = "hooked"
EMIT, ADD, FLAKY, BOOM = (
    "tests.steps.basic:emit",
    "tests.steps.basic:add_one",
    "tests.steps.basic:flaky",
    "tests.steps.basic:boom",
)


@pytest.fixture(scope="module")
def hooked_pool(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    env = {"ORCH_HOOKS": "tests.steps.hooks:Raises,tests.steps.hooks:Recorder"}
    pool = WorkerPool(redis_server.url, log_dir=tmp_path_factory.mktemp("hook-logs"), env=env)
    pool.start([QUEUE], concurrency=2, processes=1)
    yield pool
    pool.stop()


@pytest.fixture
def hooked_client(redis_server: EmbeddedRedis) -> Iterator[Client]:
    c = Client(redis_server.url, hooks=[Raises(), Recorder()])
    yield c
    c.close()


def of(events: list[dict[str, Any]], hook: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in events if e["hook"] == hook and all(e.get(k) == v for k, v in match.items())]


def test_a_chain_run_by_one_lane_reports_every_attempt(
    hooked_pool: WorkerPool, hooked_client: Client, r: redis.Redis, wf_name: str
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("a", EMIT, queue=QUEUE)
        .step("b", ADD, after=["a"], queue=QUEUE)
        .step("c", ADD, after=["b"], queue=QUEUE)
        .build()
    )
    run = hooked_client.submit(wf, {})
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    wait_until(lambda: len(of(heard(r, run.id), "on_run_finished")) == 1)
    events = heard(r, run.id)
    assert of(events, "on_run_submitted", created=True, pid=os.getpid())
    claimed = of(events, "on_step_claimed", admission="run")
    assert [(e["step"], e["lane"]) for e in claimed] == [("a", False), ("b", True), ("c", True)]
    started = of(events, "on_attempt_started")
    assert [e["step"] for e in started] == ["a", "b", "c"]
    assert all(e["queue"] == QUEUE and e["queue_delay"] >= 0 for e in started)
    finished = of(events, "on_attempt_finished", outcome="succeeded")
    assert [(e["step"], e["attempt"], e["lane"]) for e in finished] == [
        ("a", 1, False),
        ("b", 1, True),
        ("c", 1, True),
    ]
    assert all(e["duration"] >= 0 and e["pid"] != os.getpid() for e in finished)
    carried = {"carried": "from the producer"}
    assert all(e["context"] == carried for e in events), "the context reached every process"
    (end,) = of(events, "on_run_finished")
    assert (end["state"], end["workflow"], end["version"]) == ("SUCCEEDED", wf_name, 1)
    assert end["pid"] != os.getpid(), "the worker that ended the run reports it"


def test_a_retried_attempt_reports_the_retry_and_its_exception(
    hooked_pool: WorkerPool, hooked_client: Client, r: redis.Redis, wf_name: str
) -> None:
    retry = {"max_attempts": 3, "initial": "50ms", "max": "100ms", "jitter": "none"}
    wf = Flow(wf_name, 1).step("f", FLAKY, queue=QUEUE, retry=retry).build()
    run = hooked_client.submit(wf, {"fail_times": 1})
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    wait_until(lambda: len(of(heard(r, run.id), "on_run_finished")) == 1)
    events = heard(r, run.id)
    (failed,) = of(events, "on_attempt_finished", outcome="retrying")
    assert (failed["attempt"], failed["exception"]) == (1, "RuntimeError")
    assert failed["error"] == "RuntimeError: transient failure on attempt 1"
    assert failed["retry_delay"] == 0.05, "the attempt's own event says when it is retried"
    (retry_event,) = of(events, "on_retry_scheduled")
    assert (retry_event["step"], retry_event["delay"], retry_event["reason"]) == (
        "f",
        0.05,
        "RuntimeError",
    )
    (ok,) = of(events, "on_attempt_finished", outcome="succeeded")
    assert ok["attempt"] == 2


def test_a_failed_run_reports_the_failure_and_its_end(
    hooked_pool: WorkerPool, hooked_client: Client, r: redis.Redis, wf_name: str
) -> None:
    wf = Flow(wf_name, 1).step("x", BOOM, queue=QUEUE).build()
    run = hooked_client.submit(wf, {})
    assert run.wait(WAIT)["state"] == "FAILED"
    wait_until(lambda: len(of(heard(r, run.id), "on_run_finished")) == 1)
    events = heard(r, run.id)
    (failed,) = of(events, "on_attempt_finished", outcome="failed")
    assert (failed["step"], failed["exception"]) == ("x", "NonRetryableError")
    (end,) = of(events, "on_run_finished")
    assert end["state"] == "FAILED" and "boom" in end["error"]


def test_waits_are_reported_where_they_start_and_where_they_end(
    hooked_pool: WorkerPool, hooked_client: Client, r: redis.Redis, wf_name: str
) -> None:
    wf = (
        Flow(wf_name, 1)
        .step("a", EMIT, queue=QUEUE)
        .step("review", wait_for="approval", after=["a"], timeout="1h", queue=QUEUE)
        .step("c", ADD, after=["review"], queue=QUEUE)
        .build()
    )
    run = hooked_client.submit(wf, {})
    wait_until(lambda: bool(of(heard(r, run.id), "on_wait_started")), WAIT)
    (started,) = of(heard(r, run.id), "on_wait_started")
    assert (started["step"], started["signal"], started["timeout"]) == ("review", "approval", 3600)
    assert started["pid"] != os.getpid()
    time.sleep(0.2)
    assert hooked_client.signal(run.id, "approval", {"ok": True}) == ["review"]
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    (ended,) = of(heard(r, run.id), "on_wait_ended")
    assert (ended["outcome"], ended["pid"]) == ("signalled", os.getpid())
    assert 0.2 <= ended["waited"] < WAIT, "the engine measured the wait"
    # the worker reports the attempt just after recording it, so it can trail the run's end
    wait_until(lambda: bool(of(heard(r, run.id), "on_attempt_finished", step="c")), WAIT)
    (c,) = of(heard(r, run.id), "on_attempt_finished", step="c")
    assert c["upstreams"] == ["review"]


def test_a_hook_that_raises_is_logged_and_breaks_nothing(
    hooked_pool: WorkerPool, hooked_client: Client, r: redis.Redis, wf_name: str
) -> None:
    wf = Flow(wf_name, 1).step("a", EMIT, queue=QUEUE).build()
    run = hooked_client.submit(wf, {})
    assert run.wait(WAIT)["state"] == "SUCCEEDED"
    wait_until(lambda: len(of(heard(r, run.id), "on_run_finished")) == 1)
    logs = "\n".join(Path(w.log_path).read_text() for w in hooked_pool.workers)
    assert "hook tests.steps.hooks.Raises raised in on_attempt_finished" in logs
    assert "RuntimeError: broken hook saw AttemptFinished" in logs


def test_the_shipped_example_logs_one_line_per_attempt(
    redis_server: EmbeddedRedis, tmp_path: Path, client: Client, wf_name: str
) -> None:
    env = {"ORCH_HOOKS": "orchestrator.examples.hooks:LogAttempts"}
    pool = WorkerPool(redis_server.url, log_dir=tmp_path, env=env)
    pool.start(["logged"], concurrency=1, processes=1)
    try:
        wf = (
            Flow(wf_name, 1)
            .step("a", EMIT, queue="logged")
            .step("b", ADD, after=["a"], queue="logged")
            .build()
        )
        assert client.submit(wf, {}).wait(WAIT)["state"] == "SUCCEEDED"

        def lines() -> list[str]:
            logs = "\n".join(Path(w.log_path).read_text() for w in pool.workers)
            return [line for line in logs.splitlines() if f"{wf_name} v1 " in line]

        # the hook logs once the outcome is recorded, a moment after the run may have ended
        wait_until(lambda: len(lines()) == 2)
        first, second = lines()
    finally:
        pool.stop()
    assert f"{wf_name} v1 a[None] attempt 1 succeeded in " in first
    assert f"{wf_name} v1 b[None] attempt 1 succeeded in " in second


def test_attempts_name_their_dependency_and_the_breaker_they_met_or_moved(
    hooked_pool: WorkerPool, hooked_client: Client, r: redis.Redis, wf_name: str
) -> None:
    dep = f"llm-{wf_name}"
    limits = {"breaker": {"failure_rate": 0.5, "min_calls": 3, "open_for": "30s"}}
    wf = (
        Flow(wf_name, 1, dependencies={dep: limits})
        .step(
            "call",
            "tests.steps.resilience:provider",
            queue=QUEUE,
            dependency=dep,
            retry={"max_attempts": 1},
            fallback="tests.steps.basic:small_model",
        )
        .build()
    )
    runs = []
    for _ in range(4):  # three failing calls open the breaker; the fourth meets it open
        run = hooked_client.submit(wf, {"tag": wf_name, "down": True})
        assert run.result(WAIT) == "small-label"
        runs.append(run)
    for run in runs:
        wait_until(lambda run=run: len(of(heard(r, run.id), "on_run_finished")) == 1)
    finished = [of(heard(r, run.id), "on_attempt_finished")[0] for run in runs]
    assert {e["dependency"] for e in finished} == {dep}
    assert [e["breaker"] for e in finished] == [None, None, "open", "open"]
    assert [e["outcome"] for e in finished] == ["fallback"] * 4
