"""Durable sleeps: `sleep:` and `until:` steps wait in Redis, on no worker, and wake on time."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.compiler import Plan
from orchestrator.states import RunState
from orchestrator.store import outcomes as o
from tests.engine.helpers import TASK, Rig, moves, run_moves, until


def sleep_plan(rig: Rig, **kind: Any) -> Plan:
    flow = rig.flow().step("a", TASK).step("nap", after=["a"], **kind)
    return rig.install(flow.step("b", TASK, after=["nap"]).build())


def test_a_sleep_waits_with_its_wake_up_time_then_wakes_and_runs_on(rig: Rig) -> None:
    plan = sleep_plan(rig, sleep=0.2)
    run_id = rig.start(plan)
    reached = rig.finish(run_id, plan, "a")
    assert ("nap", "PENDING", "WAITING") in moves(reached)
    fields = rig.fields(run_id)
    queued, wake = float(fields["nap.q"]), float(fields["nap.wake"])
    assert abs(wake - (queued + 0.2)) < 1e-3
    step = rig.reads.status(run_id)["steps"]["nap"]
    assert step["state"] == "WAITING"
    assert step["wake_at"] is not None
    assert rig.count("nap") == 0 and rig.count("b") == 0  # no worker holds it
    [(run, name, woke)] = until(rig.upkeep.expire_waits, "the sleep to end")
    assert (run, name) == (run_id, "nap")
    assert isinstance(woke, o.Recorded)
    assert moves(woke) == [("nap", "WAITING", "SUCCEEDED"), ("b", "PENDING", "QUEUED")]
    assert rig.count("b") == 1
    assert json.loads(rig.fields(run_id)["nap.out"]) == wake


def test_until_reads_an_iso_time_with_an_offset_from_an_upstream_output(rig: Rig) -> None:
    plan = sleep_plan(rig, until="a.send.at")
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a", json.dumps({"send": {"at": "2020-01-01T00:00:00+01:00"}}))
    assert float(rig.fields(run_id)["nap.wake"]) == 1577833200.0  # 2019-12-31T23:00:00Z
    [(_, _, woke)] = until(rig.upkeep.expire_waits, "a past wake-up time to wake at once")
    assert moves(woke)[0] == ("nap", "WAITING", "SUCCEEDED")
    assert rig.state(run_id, "nap") == "SUCCEEDED"


def test_until_takes_epoch_seconds_and_does_not_wake_early(rig: Rig) -> None:
    plan = sleep_plan(rig, until="a")
    run_id = rig.start(plan)
    far = 4102444800  # 2100-01-01
    rig.finish(run_id, plan, "a", str(far))
    assert float(rig.fields(run_id)["nap.wake"]) == far
    assert rig.upkeep.expire_waits() == []
    assert rig.redis.zscore(rig.keys.timeouts, f"{run_id}|nap") == far
    assert rig.state(run_id, "nap") == "WAITING"


def test_an_until_with_no_time_fails_the_step_and_the_run(rig: Rig) -> None:
    plan = sleep_plan(rig, until="a.at")
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a", json.dumps({"at": "next tuesday"}))
    assert "nap.wake" not in rig.fields(run_id)
    [(_, _, failed)] = until(rig.upkeep.expire_waits, "the bad sleep to fail")
    assert isinstance(failed, o.Recorded)
    assert failed.ended is RunState.FAILED
    assert run_moves(failed) == [("RUNNING", "FAILED")]
    error = rig.reads.status(run_id)["error"]
    assert error.startswith("step nap failed: SleepError: no time at a.at")


def test_a_sleep_of_a_cancelled_run_does_not_wake(rig: Rig) -> None:
    plan = sleep_plan(rig, sleep=0.05)
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    assert isinstance(rig.engine.cancel(run_id), o.CancelRequested)
    [(_, _, outcome)] = until(rig.upkeep.expire_waits, "the sleep's entry to come due")
    assert outcome == o.Stop("CANCELLED")
    assert rig.state(run_id, "nap") == "WAITING"
    assert rig.count("b") == 0
