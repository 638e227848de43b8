"""The reconciler (reconcile.lua): queued work whose message was lost is sent again.

Only work with no sign of life is sent: a run with a live attempt, a delayed
entry, a message in its queue or one kombu handed out lately is left alone,
and so is a run that recorded something within the bound.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from orchestrator.messages import KOMBU_UNACKED, KOMBU_UNACKED_INDEX, priority_lists
from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import TASK, Rig


def lose_messages(rig: Rig) -> list[str]:
    """Empty the rig's queue, as a crash would; returns what it held."""
    lists = priority_lists(rig.queue)
    lost = [m.decode() for q in lists for m in rig.redis.lrange(q, 0, -1)]
    rig.redis.delete(*lists)
    return lost


def sent(rig: Rig, after: float = 0.0) -> list[tuple[str, str, int | None]]:
    return [(r.run_id, r.step, r.index) for r in rig.upkeep.reconcile(after)]


@pytest.fixture
def handed_out(rig: Rig) -> Iterator[list[str]]:
    """Delivery tags this test put in kombu's unacked hash, removed afterwards."""
    tags: list[str] = []
    yield tags
    if tags:
        rig.redis.hdel(KOMBU_UNACKED, *tags)
        rig.redis.zrem(KOMBU_UNACKED_INDEX, *tags)


def hand_out(rig: Rig, tags: list[str], message: str, at: float) -> None:
    tag = f"t-{uuid.uuid4().hex}"
    tags.append(tag)
    rig.redis.hset(KOMBU_UNACKED, tag, json.dumps([json.loads(message), "", rig.queue]))
    rig.redis.zadd(KOMBU_UNACKED_INDEX, {tag: at})


def test_a_lost_message_is_sent_again_once(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run_id = rig.start(plan)
    assert sent(rig) == [], "its message is in the queue"
    lose_messages(rig)
    assert sent(rig, after=60) == [], "the run was active within the bound"
    assert sent(rig) == [(run_id, "a", None)]
    assert rig.count("a") == 1
    assert sent(rig) == [], "the new message is in the queue"
    notes = [e for e in rig.reads.events(run_id) if "redispatched" in e]
    assert [(e["step"], e.get("index")) for e in notes] == [("a", None)]
    rig.finish(run_id, plan, "a")  # the new message runs the step as the old one would have
    assert rig.state(run_id, "b") == "QUEUED"


def test_a_run_with_a_live_attempt_or_a_delayed_entry_is_left_alone(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK).build())
    run_id = rig.start(plan)
    attempt, _ = rig.claim(run_id, plan, "a")
    lose_messages(rig)
    assert sent(rig) == [], "a has a live lease: the run is alive"
    rig.engine.fail(attempt, {"type": "E", "message": "x"}, retry_in=60)
    assert rig.state(run_id, "a") == "RETRYING"
    assert sent(rig) == [], "a waits in the delayed set"


def test_a_freshly_handed_out_message_is_a_sign_of_life_and_a_stale_one_is_not(
    rig: Rig, handed_out: list[str]
) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    (message,) = lose_messages(rig)
    time.sleep(1.1)  # the run has been idle for the bound (1 s)
    hand_out(rig, handed_out, message, at=time.time())
    assert sent(rig, after=1.0) == [], "a worker took its message a moment ago"
    rig.redis.zadd(KOMBU_UNACKED_INDEX, {handed_out[0]: time.time() - 3600})
    assert sent(rig, after=1.0) == [(run_id, "a", None)], "taken long ago, never claimed"


def test_lost_map_elements_are_sent_again_and_done_ones_are_not(rig: Rig) -> None:
    flow = rig.flow().step("seq", TASK).step("sq", TASK, map="seq")
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    seq, _ = rig.claim(run_id, plan, "seq")
    assert isinstance(rig.engine.complete(seq, "[1,2,3]", ["1", "2", "3"]), o.Recorded)
    one, _ = rig.claim(run_id, plan, "sq", index=1)
    assert isinstance(rig.engine.complete(one, "1", []), o.Recorded)
    lose_messages(rig)
    assert sorted(sent(rig), key=str) == [(run_id, "sq", 0), (run_id, "sq", 2)]


def test_ended_runs_leave_the_live_set(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    assert rig.redis.sismember(rig.keys.live, run_id)
    rig.finish(run_id, plan, "a")
    assert rig.state(run_id) == "SUCCEEDED"
    assert not rig.redis.sismember(rig.keys.live, run_id)
    rig.redis.sadd(rig.keys.live, "no-such-run")
    assert sent(rig) == []
    assert rig.redis.scard(rig.keys.live) == 0


def test_a_lost_compensation_message_is_sent_again(rig: Rig) -> None:
    flow = rig.flow().step("a", TASK, compensate=TASK).step("b", TASK, after=["a"])
    plan = rig.install(flow.build())
    run_id = rig.start(plan)
    rig.finish(run_id, plan, "a")
    attempt, _ = rig.claim(run_id, plan, "b")
    rig.engine.fail(attempt, {"type": "E", "message": "x"}, retry_in=None)
    assert rig.state(run_id) == "COMPENSATING"
    assert rig.count("a.undo") == 1
    assert sent(rig) == [], "the compensation's message is in the queue"
    lose_messages(rig)
    assert sent(rig) == [(run_id, "a", -1)]
    assert rig.count("a.undo") == 1
    undo = Attempt(run_id, plan.ref, "a", -1)
    assert isinstance(rig.engine.undo_claim(undo, "w1"), o.Run)
    assert sent(rig) == [], "the compensation runs under a live lease"
