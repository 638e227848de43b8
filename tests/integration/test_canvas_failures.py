"""Celery's known canvas failures must not happen here.

Each shape below is one that Celery's nested chords get wrong (hang, skip the
join, run it twice, lose the error, report it many times). Here every join is
an atomic counter in Redis, so each must end in the right terminal state,
promptly: every wait is bounded.
"""

from __future__ import annotations

import pytest
import redis

from orchestrator import Client
from tests.conftest import executions
from tests.integration.helpers import (
    WAIT,
    WEIGHTS,
    DoneListener,
    entered,
    expect_executions,
    expected_output,
    only_start,
    path,
    run_events,
    starts_by_step,
    succeeded_at,
    wait_until,
)
from tests.integration.helpers import node_flow as flow_of

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("workers")]


def test_failure_inside_a_chain_in_a_parallel_branch(
    client: Client, r: redis.Redis, wf_name: str
) -> None:
    """celery#6220: a chain inside a chord header that fails before its last task
    never triggers the chord's error handling, and the caller hangs.

    Here: a → (b → c → f) ∥ e → g, with c failing. The run must fail naming c,
    and neither f nor the join g may ever run.
    """
    ups = {"a": [], "b": ["a"], "c": ["b"], "f": ["c"], "e": ["a"], "g": ["f", "e"]}
    run = client.submit(flow_of(wf_name, ups).build(), {"weights": WEIGHTS, "fail": ["c"]})
    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "FAILED"
    assert doc["error"] == "step c failed: NonRetryableError: c failed on purpose"
    assert doc["steps"]["c"]["state"] == "FAILED"
    wait_until(lambda: run.status()["steps"]["e"]["state"] in {"SUCCEEDED", "QUEUED"})
    for never in ("f", "g"):
        assert doc["steps"][never]["state"] == "PENDING", never
        assert path(run.events(), never) == [], f"{never} was queued"
    ran = executions(r, run.id)
    assert f"{run.id}/g" not in ran and f"{run.id}/f" not in ran
    assert all(n == 1 for n in ran.values()), ran


def test_retried_step_in_a_fan_out_before_a_join(
    client: Client, r: redis.Redis, wf_name: str
) -> None:
    """celery#1401: the chord body is never executed if a header task was retried.

    Here: a → (b, c, d) → e, with c failing twice before it succeeds. The join
    e must run exactly once, after c's successful third attempt.
    """
    ups = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c", "d"]}
    fields = {"c": {"retry": {"max_attempts": 3, "initial": 0.05, "max": 0.2}}}
    run = client.submit(
        flow_of(wf_name, ups, **fields).build(), {"weights": WEIGHTS, "flaky": {"c": 2}}
    )
    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == expected_output(ups, "e")
    assert doc["steps"]["c"]["attempts"] == 3
    assert doc["steps"]["c"]["output"]["attempt"] == 3
    events = run.events()
    assert path(events, "c").count("RETRYING") == 2
    assert len(entered(events, "e", "QUEUED")) == 1
    assert only_start(starts_by_step(r, run.id), "e") >= succeeded_at(events, "c")
    assert executions(r, run.id) == {
        f"{run.id}/a": 1, f"{run.id}/b": 1, f"{run.id}/c": 3, f"{run.id}/d": 1, f"{run.id}/e": 1,
    }  # fmt: skip


def test_sequence_as_the_body_of_a_join(client: Client, r: redis.Redis, wf_name: str) -> None:
    """celery#6792: a chain used as a chord's body gets the wrong input or runs
    the wrong number of times.

    Here: a → (b, c, d) → e → f → g → h. Every step runs once and the final
    result carries every upstream value through the chain.
    """
    ups = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c", "d"],
           "f": ["e"], "g": ["f"], "h": ["g"]}  # fmt: skip
    run = client.submit(flow_of(wf_name, ups).build(), {"weights": WEIGHTS})
    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == expected_output(ups, "h")
    assert doc["steps"]["e"]["output"] == expected_output(ups, "e")
    expect_executions(r, run, list(ups))
    events = run.events()
    for s, after in ups.items():
        for u in after:
            assert entered(events, s, "QUEUED")[0] >= succeeded_at(events, u), (s, u)


def test_fan_out_sequence_fan_out_nesting(client: Client, r: redis.Redis, wf_name: str) -> None:
    """celery#2573: a group inside a chain inside a group (nested fan-outs joined
    by sequences) loses or repeats tasks.

    Here: a → (b → d → (f, g), c → e → h). Every step runs exactly once and the
    result maps each of the three final steps to its output.
    """
    ups = {"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": ["c"],
           "f": ["d"], "g": ["d"], "h": ["e"]}  # fmt: skip
    run = client.submit(flow_of(wf_name, ups).build(), {"weights": WEIGHTS})
    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == {s: expected_output(ups, s) for s in "fgh"}
    expect_executions(r, run, list(ups))
    events = run.events()
    for s in ups:
        assert len(entered(events, s, "QUEUED")) == 1, s
        assert len(entered(events, s, "SUCCEEDED")) == 1, s


def test_join_whose_upstream_fails_reports_the_error_once(
    client: Client, r: redis.Redis, wf_name: str, done: DoneListener
) -> None:
    """celery#3709, celery#8211: a chord whose header task fails reports the error
    through its callbacks zero or several times (ChordError per dependency).

    Here: a → (b, c, d) → e, with c failing while b and d are still running.
    The error reaches the run exactly once: one FAILED step, one run FAILED
    transition, one end-of-run notice, and the join never runs.
    """
    before = client.store.reads.illegal_transitions()
    ups = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c", "d"]}
    run = client.submit(
        flow_of(wf_name, ups).build(),
        {"weights": WEIGHTS, "fail": ["c"], "sleeps": {"b": 0.8, "c": 0.2, "d": 0.8}},
    )
    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "FAILED"
    assert doc["error"] == "step c failed: NonRetryableError: c failed on purpose"
    # b and d finish after the run failed: their outcomes are recorded, nothing more
    wait_until(lambda: all(run.status()["steps"][s]["state"] == "SUCCEEDED" for s in "bd"))
    final = run.status()
    assert final["state"] == "FAILED" and final["error"] == doc["error"]
    failed = [s for s, st in final["steps"].items() if st["state"] == "FAILED"]
    assert failed == ["c"]
    assert final["steps"]["e"]["state"] == "PENDING"
    events = run.events()
    assert [e["to"] for e in run_events(events)] == ["PENDING", "RUNNING", "FAILED"]
    assert path(events, "e") == []
    assert f"{run.id}/e" not in executions(r, run.id)
    assert done.notices(run.id) == ["FAILED"]
    assert client.store.reads.illegal_transitions() == before


def test_join_whose_upstreams_fail_together_reports_one_error(
    client: Client, r: redis.Redis, wf_name: str, done: DoneListener
) -> None:
    """celery#8211: with several failing header tasks, each failure raises its own
    ChordError and error callbacks fire once per failure.

    Here: a → (b, c, d) → e, with b and c failing at the same moment. Both steps
    record their failure, but the run fails once, with the first error, and
    says so once; no transition is refused.
    """
    before = client.store.reads.illegal_transitions()
    ups = {"a": [], "b": ["a"], "c": ["a"], "d": ["a"], "e": ["b", "c", "d"]}
    run = client.submit(
        flow_of(wf_name, ups).build(),
        {"weights": WEIGHTS, "fail": ["b", "c"], "sleeps": {"b": 0.4, "c": 0.4}},
    )
    doc = run.wait(timeout=WAIT)
    assert doc["state"] == "FAILED"
    wait_until(lambda: run.status()["steps"]["d"]["state"] == "SUCCEEDED")
    wait_until(lambda: {run.status()["steps"][s]["state"] for s in "bc"} == {"FAILED"})
    final = run.status()
    events = run.events()
    first = min("bc", key=lambda s: entered(events, s, "FAILED")[0])
    assert final["error"] == f"step {first} failed: NonRetryableError: {first} failed on purpose"
    assert [e["to"] for e in run_events(events)] == ["PENDING", "RUNNING", "FAILED"]
    assert final["steps"]["e"]["state"] == "PENDING"
    assert f"{run.id}/e" not in executions(r, run.id)
    assert done.notices(run.id) == ["FAILED"]
    assert client.store.reads.illegal_transitions() == before
