"""The queueing model in the scripts: priority picks the list, lanes yield, admission, fairness.

Priority (0-9, higher sooner) decides which kombu list a message goes to, for
every way a step becomes work; workers poll the lists in order. Admission
control refuses a submit over a declared backlog. Fairness holds messages of
a busy list back per fairness key and releases them in weighted round-robin.
"""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.messages import priority_list
from orchestrator.queueview import queue_document
from orchestrator.states import RunState
from orchestrator.store import Attempt, Lane
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig

UNDO = "tests.unit.stepfns:fetch"


def submit(rig: Rig, plan: Any, **kw: Any) -> str:
    submitted = rig.engine.submit(plan, '{"x": 1}', key=kw.pop("key", None), **kw)
    assert isinstance(submitted, o.Submitted), submitted
    return submitted.run_id


def on_list(rig: Rig, priority: int) -> list[dict[str, Any]]:
    """The messages waiting at ``priority`` on the rig's queue, oldest first."""
    raw = rig.redis.lrange(priority_list(rig.queue, priority), 0, -1)
    return [json.loads(m) for m in reversed(raw)]


def run_of(message: dict[str, Any]) -> str:
    return str(json.loads(message["body"])[0][0])


def test_a_runs_priority_picks_the_list_of_its_messages(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    low, mid, high = (submit(rig, plan, priority=p) for p in (0, 5, 9))
    for run_id, p in ((low, 0), (mid, 5), (high, 9)):
        (message,) = on_list(rig, p)
        assert run_of(message) == run_id
        # kombu restores an unacknowledged message by this property: it keeps its list.
        assert message["properties"]["priority"] == 9 - p
    assert priority_list(rig.queue, 9) == rig.queue, "the highest priority is the plain list"
    assert rig.reads.status(mid)["priority"] == 5


def test_workers_take_higher_priority_first_whatever_the_order_of_submit(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    order = [submit(rig, plan, priority=p) for p in (0, 3, 0, 7, 3)]
    taken = rig.messages()
    assert len(taken) == 5
    by_run = {r: p for r, p in zip(order, (0, 3, 0, 7, 3), strict=True)}
    queued = [
        run_of(json.loads(m))
        for p in range(9, -1, -1)
        for m in reversed(rig.redis.lrange(priority_list(rig.queue, p), 0, -1))
    ]
    assert [by_run[r] for r in queued] == [7, 3, 3, 0, 0]
    assert queued[3:] == [order[0], order[2]], "within a level, oldest first"


def test_a_steps_own_priority_overrides_its_runs(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"], priority=8).build())
    run_id = submit(rig, plan, priority=2)
    assert len(on_list(rig, 2)) == 1
    rig.redis.delete(priority_list(rig.queue, 2))
    rig.finish(run_id, plan, "a")
    (message,) = on_list(rig, 8)
    assert message["headers"]["shadow"] == f"{rig.name}.b"


def test_fan_out_and_a_retry_from_the_delayed_set_keep_the_runs_priority(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("m", TASK, map="a").build())
    run_id = submit(rig, plan, priority=6)
    rig.redis.delete(priority_list(rig.queue, 6))
    a, _ = rig.claim(run_id, plan, "a")
    done = rig.engine.complete(a, "[1, 2, 3]", ["1", "2", "3"])
    assert isinstance(done, o.Recorded)
    assert len(on_list(rig, 6)) == 3 and on_list(rig, 0) == []
    rig.redis.delete(priority_list(rig.queue, 6))
    element, _ = rig.claim(run_id, plan, "m", index=1)
    failed = rig.engine.fail(element, ERROR, retry_in=0.0)
    assert isinstance(failed, o.Recorded)
    (entry,) = rig.delayed()
    assert entry["q"] == priority_list(rig.queue, 6)
    time.sleep(0.01)
    assert rig.upkeep.promote_due() == 1
    (message,) = on_list(rig, 6)
    assert json.loads(message["body"])[0][3] == 1


def test_a_compensation_keeps_the_runs_priority(rig: Rig) -> None:
    plan = rig.install(
        rig.flow(retry={"max_attempts": 1})
        .step("a", TASK, compensate=UNDO)
        .step("b", TASK, after=["a"])
        .build()
    )
    run_id = submit(rig, plan, priority=4)
    rig.finish(run_id, plan, "a")
    rig.redis.delete(priority_list(rig.queue, 4))
    b, _ = rig.claim(run_id, plan, "b")
    failed = rig.engine.fail(b, ERROR, retry_in=None)
    assert isinstance(failed, o.Recorded)
    assert failed.ended is None and rig.state(run_id) == "COMPENSATING"
    (message,) = on_list(rig, 4)
    assert message["headers"]["shadow"] == f"{rig.name}.a.undo"


def test_a_lane_yields_when_higher_priority_work_waits_on_its_queue(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    low = submit(rig, plan, priority=1)
    rig.redis.delete(priority_list(rig.queue, 1))
    a, _ = rig.claim(low, plan, "a")
    high = submit(rig, plan, priority=7)
    lane = Lane(rig.queue, "w1", deadline=time.monotonic() + 60)
    done = rig.engine.complete(a, '"a"', [], lane=lane)
    assert isinstance(done, o.Recorded)
    assert done.handoff is None, "the lane went on past higher-priority work"
    (message,) = on_list(rig, 1)
    assert run_of(message) == low and message["headers"]["shadow"] == f"{rig.name}.b"
    assert [run_of(m) for m in on_list(rig, 7)] == [high]


def test_a_lane_goes_on_over_lower_or_equal_priority_work(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = submit(rig, plan, priority=5)
    rig.redis.delete(priority_list(rig.queue, 5))
    a, _ = rig.claim(run_id, plan, "a")
    submit(rig, plan, priority=5)
    submit(rig, plan, priority=2)
    lane = Lane(rig.queue, "w1", deadline=time.monotonic() + 60)
    done = rig.engine.complete(a, '"a"', [], lane=lane)
    assert isinstance(done, o.Recorded)
    assert done.handoff is not None and done.handoff.step == "b"


# --- admission control ---------------------------------------------------------------


def test_submit_over_max_queued_is_refused_and_counted(rig: Rig) -> None:
    plan = rig.install(rig.flow(max_queued=2).step("a", TASK).build())
    first = submit(rig, plan, key="k1")
    submit(rig, plan)
    assert rig.engine.submit(plan, "{}", key=None) == o.Refused("workflow", 2, 2)
    assert rig.engine.submit(plan, "{}", key="k9") == o.Refused("workflow", 2, 2)
    again = rig.engine.submit(plan, "{}", key="k1")
    assert again == o.Submitted(first, created=False), "a resubmit of an accepted key"
    assert rig.redis.hget(rig.keys.refused, rig.name) == b"2"
    assert rig.count("a") == 2, "a refused run queued nothing"
    rig.claim(first, plan, "a")  # its first attempt starts: it leaves the backlog
    submit(rig, plan)
    assert rig.redis.zcard(rig.keys.backlog(rig.name)) == 2


def test_a_run_that_ends_before_starting_leaves_the_backlog(rig: Rig) -> None:
    plan = rig.install(rig.flow(max_queued=1).step("a", TASK).build())
    run_id = submit(rig, plan)
    assert isinstance(rig.engine.submit(plan, "{}", key=None), o.Refused)
    rig.engine.cancel(run_id, "not needed")
    assert rig.state(run_id) == RunState.CANCELLED.value
    submit(rig, plan)


def test_a_run_that_first_waits_for_a_signal_is_not_queued(rig: Rig) -> None:
    plan = rig.install(rig.flow(max_queued=1).step("ok", wait_for="approval").build())
    submit(rig, plan)
    submit(rig, plan)
    assert rig.redis.zcard(rig.keys.backlog(rig.name)) == 0


def test_a_fairness_keys_own_limit_refuses_only_that_key(rig: Rig) -> None:
    plan = rig.install(
        rig.flow(fairness={"key": "input.tenant", "max_queued": 1}).step("a", TASK).build()
    )
    submit(rig, plan, fairness_key="A")
    assert rig.engine.submit(plan, "{}", key=None, fairness_key="A") == o.Refused("key", 1, 1)
    submit(rig, plan, fairness_key="B")
    submit(rig, plan)  # no key: only the workflow's limit (none here) applies
    assert rig.redis.hget(rig.keys.refused, f"{rig.name}:A") == b"1"
    assert rig.redis.zcard(rig.keys.key_backlog(rig.name, "B")) == 1


# --- fairness ------------------------------------------------------------------------


def consumers(rig: Rig, width: int) -> None:
    """What a live worker's capacity beat says: ``width`` processes consume the queue."""
    rig.redis.zadd(rig.keys.capacity(rig.queue), {f"host|{width}": time.time() + 60})


def take(rig: Rig, plan: Any, *, claim: bool = True) -> str | None:
    """What a worker does: pop the next message of the queue, then claim its step."""
    raw = rig.redis.rpop(priority_list(rig.queue, 0))
    if raw is None:
        return None
    run_id = run_of(json.loads(raw))
    if claim:
        outcome = rig.engine.claim(Attempt(run_id, plan.ref, "a"), "w1")
        assert isinstance(outcome, o.Run)
    return run_id


def tenants(rig: Rig, plan: Any, submits: list[tuple[str, float]]) -> dict[str, str]:
    out = {}
    for key, weight in submits:
        out[submit(rig, plan, fairness_key=key, fairness_weight=weight)] = key
    return out


def test_a_burst_of_one_tenant_does_not_queue_ahead_of_another(rig: Rig) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    owner = tenants(rig, plan, [("A", 1.0)] * 5 + [("B", 1.0)] * 2)
    assert rig.redis.llen(priority_list(rig.queue, 0)) == 2, "one per consumer, and B's first"
    order = [owner[r] for r in iter(lambda: take(rig, plan), None)]
    # B's first went ahead of A1; both keys started waiting at the same pass, A first by name.
    assert order == ["B", "A", "A", "B", "A", "A", "A"]
    assert rig.redis.exists(rig.keys.fair_lists) == 0, "nothing is left held"


def test_a_newcomers_first_message_jumps_the_list_but_only_one_is_ever_above_its_depth(
    rig: Rig,
) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    owner = tenants(rig, plan, [("A", 1.0)] * 5)
    assert rig.redis.llen(rig.keys.fair_held(priority_list(rig.queue, 0), "A")) == 4
    time.sleep(0.05)  # A1, in the list, is this much older than B's first, which jumps it
    owner.update(tenants(rig, plan, [("B", 1.0), ("C", 1.0)]))
    listed = [
        owner[run_of(json.loads(m))] for m in rig.redis.lrange(priority_list(rig.queue, 0), 0, -1)
    ]
    assert listed == ["A", "B"], "B's first at the end workers pop; C's waits its turn"
    assert rig.redis.llen(rig.keys.fair_held(priority_list(rig.queue, 0), "C")) == 1
    rows = [r for r in queue_document(rig.reads, rig.queue)["queues"] if r["queue"] == rig.queue]
    listed_row = next(r for r in rows if not r["held"])
    assert listed_row["depth"] == 2
    assert listed_row["oldest_age"] >= 0.05, "the oldest is A1, behind the message that jumped"
    assert {r["fairness_key"]: r["depth"] for r in rows if r["held"]} == {"A": 4, "C": 1}
    order = [owner[r] for r in iter(lambda: take(rig, plan), None)]
    assert order == ["B", "A", "A", "C", "A", "A", "A"]


def test_weights_give_shares_of_the_releases(rig: Rig) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    owner = tenants(rig, plan, [("X", 1.0)] * 9 + [("Y", 3.0)] * 9)
    taken = [owner[r] for r in iter(lambda: take(rig, plan), None)]
    assert taken[0] == "Y", "Y's first jumped the list"
    assert taken[1:4] == ["X", "X", "X"], "X1 was in the list; then X's two strides of credit"
    assert taken[4:12].count("Y") == 6 and taken[4:12].count("X") == 2, "then 3:1"
    assert sorted(taken) == ["X"] * 9 + ["Y"] * 9


def test_a_tenant_that_was_idle_goes_at_once_and_thrice_more_but_banks_no_more(
    rig: Rig,
) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    owner = tenants(rig, plan, [("A", 1.0)] * 8)
    order = [owner[take(rig, plan)] for _ in range(3)]
    owner.update(tenants(rig, plan, [("B", 1.0)] * 5))
    order += [owner[r] for r in iter(lambda: take(rig, plan), None)]
    # B, idle until now, sends its first ahead of A4 (already in the list), then starts two
    # strides before the last release, which A's next turn is one stride after: B goes three
    # times more, then they take turns, however many A ran before.
    assert order == ["A", "A", "A", "B", "A", "B", "B", "B", "A", "B", "A", "A", "A"]


def test_a_release_on_credit_does_not_turn_the_clock_back_for_the_next_newcomer(
    rig: Rig,
) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    owner = tenants(rig, plan, [("A", 1.0)] * 6)
    order = [owner[take(rig, plan)] for _ in range(3)]
    owner.update(tenants(rig, plan, [("B", 1.0)] * 3))
    order += [owner[take(rig, plan)] for _ in range(2)]  # B1 jumped; A4, releasing B2 on credit
    owner.update(tenants(rig, plan, [("C", 1.0)] * 3))
    order += [owner[r] for r in iter(lambda: take(rig, plan), None)]
    # C starts two strides before the clock, which B2's release left where it was: C takes
    # turns with B (a clock turned back would give C two in a row).
    assert order == ["A", "A", "A", "B", "A", "C", "B", "C", "B", "C", "A", "A"]


def test_unkeyed_work_takes_turns_as_one_key_once_a_list_holds_work_back(rig: Rig) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    owner = tenants(rig, plan, [("A", 1.0)] * 3)
    owner.update({submit(rig, plan): "", submit(rig, plan): ""})
    held = rig.keys.fair_held(priority_list(rig.queue, 0), "")
    assert rig.redis.llen(held) == 1, "the unkeyed runs are held too (the first jumped the list)"
    taken = [owner[r] for r in iter(lambda: take(rig, plan), None)]
    assert taken == ["", "A", "", "A", "A"]


def test_a_worker_lost_before_its_claim_strands_nothing(rig: Rig) -> None:
    consumers(rig, 1)
    plan = rig.install(rig.flow().step("a", TASK).build())
    tenants(rig, plan, [("A", 1.0)] * 3)
    assert take(rig, plan, claim=False) is not None  # popped, then the worker died
    assert rig.redis.llen(priority_list(rig.queue, 0)) == 0
    rig.upkeep.promote_due()
    assert rig.redis.llen(priority_list(rig.queue, 0)) == 1, "the promoter released the next"
    assert len([r for r in iter(lambda: take(rig, plan), None)]) == 2


# --- per-key concurrency ---------------------------------------------------------------


def limited(rig: Rig, strategy: str = "queue") -> Any:
    concurrency = {"key": "input.user", "max_runs": 2, "strategy": strategy}
    return rig.install(rig.flow(concurrency=concurrency).step("a", TASK).build())


def test_runs_beyond_the_limit_wait_and_start_in_order_as_slots_free(rig: Rig) -> None:
    plan = limited(rig)
    first, second, third, fourth = (submit(rig, plan, concurrency_key="u1") for _ in range(4))
    other = submit(rig, plan, concurrency_key="u2")
    assert [rig.state(r) for r in (first, second, third, fourth, other)] == [
        "RUNNING", "RUNNING", "PENDING", "PENDING", "RUNNING"
    ]  # fmt: skip
    assert rig.count("a") == 3, "a waiting run holds no message, so no worker"
    rig.finish(first, plan, "a")
    assert rig.state(third) == "PENDING"
    assert rig.upkeep.promote_due() == 1
    assert rig.state(third) == "RUNNING" and rig.state(fourth) == "PENDING"
    rig.engine.cancel(fourth, "no longer needed")  # a waiting run can be cancelled
    assert rig.state(fourth) == "CANCELLED"
    rig.finish(second, plan, "a")
    assert rig.upkeep.promote_due() == 0, "the cancelled run left the line"
    assert rig.redis.zrange(rig.keys.run_slots(plan.ref, "u1"), 0, -1) == [third.encode()]
    rig.finish(third, plan, "a")
    assert rig.redis.exists(rig.keys.run_slots(plan.ref, "u1")) == 0


def test_cancel_newest_cancels_the_run_over_the_limit(rig: Rig) -> None:
    plan = limited(rig, "cancel_newest")
    kept = [submit(rig, plan, concurrency_key="u1") for _ in range(2)]
    newest = submit(rig, plan, concurrency_key="u1")
    assert rig.state(newest) == "CANCELLED"
    assert "concurrency limit" in rig.fields(newest)["error"]
    assert [rig.state(r) for r in kept] == ["RUNNING", "RUNNING"]
    assert rig.redis.zcard(rig.keys.backlog(rig.name)) == 2


def test_cancel_oldest_gives_the_oldest_runs_slot_to_the_new_run(rig: Rig) -> None:
    plan = limited(rig, "cancel_oldest")
    oldest, middle = (submit(rig, plan, concurrency_key="u1") for _ in range(2))
    submitted = rig.engine.submit(plan, "{}", key=None, concurrency_key="u1")
    assert isinstance(submitted, o.Submitted) and submitted.evicted == oldest
    slots = rig.redis.zrange(rig.keys.run_slots(plan.ref, "u1"), 0, -1)
    assert slots == [middle.encode(), submitted.run_id.encode()]
    assert rig.state(submitted.run_id) == "RUNNING"
