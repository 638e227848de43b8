"""When a worker goes on with a run's next steps itself (pure: no Redis is contacted)."""

from __future__ import annotations

import time

import redis

from orchestrator import Flow
from orchestrator.compiler import compile_plan
from orchestrator.keys import Keys
from orchestrator.store import Lane, RunStore, token_owner
from workers.loaded import LoadedWorkflow
from workers.runtime import StepRuntime

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
    lane = runtime(1.5)._lane(loaded(), "a", "w1")
    assert lane is not None
    assert (lane.queue, lane.worker) == ("orch", "w1")
    assert before + 1.5 <= lane.deadline <= time.monotonic() + 1.5
    gpu = runtime(1.5)._lane(loaded(), "c", "w1")
    assert gpu is not None and gpu.queue == "gpu"


def test_no_runner_for_a_time_limited_task_or_a_zero_slice() -> None:
    assert runtime(1.5)._lane(loaded(), "b", "w1") is None
    assert runtime(0)._lane(loaded(), "a", "w1") is None


def test_the_runner_yields_once_its_slice_is_over() -> None:
    engine = runtime(1.0).store.engine
    fresh = Lane("orch", "w1", time.monotonic() + 60)
    args = engine._lane_args(fresh)
    assert (args["lane_queue"], args["lane_worker"], args["lane_lease"]) == ("orch", "w1", 7)
    assert args["lane_yield"] is False
    assert (
        args["lane_token"].endswith("." + token_owner())
        and args["lane_token"] != engine._lane_args(fresh)["lane_token"]
    )
    spent = Lane("orch", "w1", time.monotonic() - 0.001)
    assert engine._lane_args(spent)["lane_yield"] is True
    assert engine._lane_args(None) == {}
