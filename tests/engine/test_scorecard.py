"""The scorecard's counters and their rollup, driven through the scripts (no Celery)."""

from __future__ import annotations

import math

from orchestrator.scorecard.histogram import bucket_of, lua_bucket
from tests.engine.helpers import TASK, Rig


def minute_now(rig: Rig) -> int:
    return int(rig.reads.now() // 60)


def test_a_run_is_counted_in_the_current_minute(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build())
    run = rig.start(plan)
    rig.finish(run, plan, "a")
    rig.finish(run, plan, "b")
    counts = rig.store.scores.minutes(plan.ref, [minute_now(rig)])
    (bucket,) = counts.values()
    attempts = {k: v for k, v in bucket.items() if k.startswith("ok:")}
    assert sorted(k.rsplit(":", 2)[0] for k in attempts) == ["ok:a", "ok:b"]
    assert all(k.endswith(":f") for k in attempts), "first attempts"
    assert bucket["end:SUCCEEDED:0:1"] == 1, "one run, no compensation, its one edge taken"
    assert rig.reads.stats(plan.ref) == {"ok:a": 1, "ok:b": 1}


def test_rollup_adds_each_closed_minute_to_its_hour_once(rig: Rig) -> None:
    ref = f"{rig.name}:1"
    m = minute_now(rig) - 5  # closed: older than two minutes
    minute = rig.keys.score_minute(ref, m)
    rig.redis.hset(minute, mapping={"ok:a:3:f": 2, "failsec:a": "0.25"})
    rig.redis.zadd(rig.keys.score_active, {ref: rig.reads.now()})
    before = rig.store.scores.hours(ref, [m // 60])
    assert before == {m // 60: {"ok:a:3:f": 2.0, "failsec:a": 0.25}}, "unrolled minutes count"
    assert rig.upkeep.rollup() >= 1
    hour = rig.redis.hgetall(rig.keys.score_hour(ref, m // 60))
    assert hour == {b"ok:a:3:f": b"2", b"failsec:a": b"0.25"}
    assert rig.redis.ttl(minute) > 0 and rig.redis.ttl(rig.keys.score_hour(ref, m // 60)) > 0
    rig.upkeep.rollup()
    assert rig.redis.hget(rig.keys.score_hour(ref, m // 60), "ok:a:3:f") == b"2", "never twice"
    assert rig.store.scores.hours(ref, [m // 60]) == before, "read the same after the rollup"
    assert int(rig.redis.get(rig.keys.score_rolled(ref)) or 0) >= m


def test_the_current_minute_is_not_rolled(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run = rig.start(plan)
    rig.finish(run, plan, "a")
    rig.upkeep.rollup()
    hour = minute_now(rig) // 60
    assert rig.redis.exists(rig.keys.score_hour(plan.ref, hour)) == 0
    assert rig.store.scores.hours(plan.ref, [hour])[hour]["end:SUCCEEDED:0:"] == 1


def test_lua_and_python_agree_on_every_bucket(rig: Rig) -> None:
    script = lua_bucket() + (
        "local out = {}\nfor k, d in ipairs(ARGV) do out[k] = qd_bucket(tonumber(d)) end\n"
        "return out"
    )
    delays = [0, 0.0005, 0.001, 0.0010001, 0.0014142, 0.0014143, 0.002, 0.25, 1, 7.5, 60, 1e6]
    delays += [0.001 * math.sqrt(2) ** k for k in range(1, 60)]
    answered = rig.redis.eval(script, 0, *[repr(d) for d in delays])
    assert answered == [bucket_of(d) for d in delays]
