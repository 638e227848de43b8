"""When a worker goes on with a run's next steps itself (pure: no Redis is contacted)."""

from __future__ import annotations

import time

import redis

from orchestrator import Flow
from orchestrator.compiler import compile_plan
from orchestrator.keys import Keys
from orchestrator.store import Runner, RunStore
from workers.runtime import LoadedWorkflow, StepRuntime

TASK = "tests.unit.stepfns:fetch"


def loaded() -> LoadedWorkflow:
    wf = (
        Flow("runner", 1)
        .step("a", TASK)
        .step("b", TASK, after=["a"], retry={"timeout": 5})
        .step("c", TASK, after=["b"], queue="gpu")
        .build()
    )
    return LoadedWorkflow(wf, compile_plan(wf))


def runtime(slice_: float) -> StepRuntime:
    store = RunStore(redis.Redis(port=1), Keys(), run_ttl=60, max_payload=1000, lease_seconds=7)
    return StepRuntime(store, runner_slice=slice_)


def test_a_runner_serves_the_queue_of_the_step_it_started_with() -> None:
    before = time.monotonic()
    runner = runtime(1.5)._runner(loaded(), "a", "w1")
    assert runner is not None
    assert (runner.queue, runner.worker, runner.handoff) == ("orch", "w1", None)
    assert before + 1.5 <= runner.deadline <= time.monotonic() + 1.5
    gpu = runtime(1.5)._runner(loaded(), "c", "w1")
    assert gpu is not None and gpu.queue == "gpu"


def test_no_runner_for_a_time_limited_task_or_a_zero_slice() -> None:
    assert runtime(1.5)._runner(loaded(), "b", "w1") is None
    assert runtime(0)._runner(loaded(), "a", "w1") is None


def test_the_runner_yields_once_its_slice_is_over() -> None:
    store = runtime(1.0).store
    fresh = Runner("orch", "w1", time.monotonic() + 60)
    queue, token, worker, lease, yielding = store._runner_args(fresh)
    assert (queue, worker, lease, yielding) == ("orch", "w1", "7", "")
    assert len(token) == 12 and token != store._runner_args(fresh)[1]
    spent = Runner("orch", "w1", time.monotonic() - 0.001)
    assert store._runner_args(spent)[4] == "yield"
    assert store._runner_args(None) == ("", "", "", "", "")
