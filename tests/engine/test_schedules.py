"""Schedules over simulated ticks: the ticker's clock is injected, Redis and the scripts are real.

Runs go to the rig's private queue, which no worker consumes, so a run stays
live until the test ends it (for the overlap policies).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from orchestrator import Client
from orchestrator.errors import NotFoundError, OrchestratorError, SpecError
from orchestrator.schedules import Schedules, ScheduleSpec
from orchestrator.schedules.ticker import chosen, key_of
from orchestrator.settings import Settings
from orchestrator.spec import Workflow
from tests.engine.helpers import TASK, Rig

T0 = 1_800_000_000.0  # a whole minute: 2027-01-15T08:00:00Z


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(rig: Rig) -> Iterator[Client]:
    url = rig.redis.connection_pool.connection_kwargs
    c = Client(
        f"redis://{url['host']}:{url['port']}/0",
        settings=Settings(key_prefix=rig.keys.prefix, default_queue=rig.queue),
    )
    yield c
    c.close()


def book(client: Client, clock: Clock) -> Schedules:
    return Schedules(client, clock=clock)


def add(rig: Rig, sched: Schedules, cron: str = "* * * * *", **kw: object) -> Workflow:
    wf = rig.flow().step("a", TASK, queue=rig.queue).build()
    sched.add("nightly", wf, cron, **kw)  # type: ignore[arg-type]
    return wf


def runs_of(rig: Rig) -> dict[int, str]:
    """Tick -> run id, from the idempotency keys the ticker submitted under."""
    found = {}
    for key in rig.redis.scan_iter(f"{rig.keys.prefix}key:*"):
        tick = int(key.decode().rsplit(":", 1)[1])
        found[tick] = rig.redis.get(key).decode()
    return found


def test_each_tick_starts_one_run_however_many_tickers_fire_it(rig: Rig, client: Client) -> None:
    clock = Clock(T0 - 30)
    sched = book(client, clock)
    add(rig, sched, overlap="allow")
    assert sched.get("nightly")["next_at"] == "2027-01-15T08:00:00.000000Z"
    assert sched.tick(T0 - 1) == []  # nothing due yet
    others = [book(client, clock) for _ in range(3)]
    fired = [s.tick(T0 + 0.4) for s in others]
    runs = {run for f in fired for one in f for run in one.runs.values()}
    assert len(runs) == 1
    assert sum(one.won for f in fired for one in f) == 1  # one ticker moved it on
    assert runs_of(rig) == {int(T0): runs.pop()}
    for minute in range(1, 4):
        for s in others:
            s.tick(T0 + 60 * minute + 0.5)
    assert sorted(runs_of(rig)) == [int(T0) + 60 * m for m in range(4)]
    doc = sched.get("nightly")
    assert doc["next_at"] == "2027-01-15T08:04:00.000000Z"
    assert doc["last_run"] == runs_of(rig)[int(T0) + 180]


def test_missed_ticks_follow_catchup_after_a_pause(rig: Rig, client: Client) -> None:
    clock = Clock(T0 - 30)
    sched = book(client, clock)
    add(rig, sched, catchup=2, overlap="allow")
    sched.tick(T0 + 1)
    clock.now = T0 + 10
    assert sched.pause("nightly") is True
    assert sched.pause("nightly") is False
    assert sched.tick(T0 + 300) == []  # paused: nothing fires
    clock.now = T0 + 330  # five ticks passed while paused (08:01 ... 08:05)
    assert sched.resume("nightly") is True
    sched.tick(T0 + 331)
    assert sorted(runs_of(rig)) == [int(T0), int(T0) + 240, int(T0) + 300]
    sched.tick(T0 + 361)  # 08:06 is on time again
    assert max(runs_of(rig)) == int(T0) + 360


def test_without_catchup_only_the_latest_tick_after_an_outage_runs(
    rig: Rig, client: Client
) -> None:
    sched = book(client, Clock(T0 - 30))
    add(rig, sched, overlap="allow")
    sched.tick(T0 + 600.5)  # no ticker ran for ten minutes
    assert list(runs_of(rig)) == [int(T0) + 600]


def test_overlap_skip_and_queue_wait_for_the_live_run(rig: Rig, client: Client) -> None:
    clock = Clock(T0 - 30)
    sched = book(client, clock)
    add(rig, sched)  # overlap: skip by default
    sched.tick(T0 + 1)
    [fired] = sched.tick(T0 + 61)
    assert fired.skipped == (T0 + 60,) and fired.runs == {}
    assert sched.get("nightly")["skipped"] == 1
    sched.remove("nightly")
    with pytest.raises(NotFoundError):
        sched.get("nightly")
    clock.now = T0 + 55  # added again just before 08:01
    plan = client.register(add(rig, sched, overlap="queue", catchup=5))
    [first] = sched.tick(T0 + 61)
    assert list(first.runs) == [T0 + 60]
    [held] = sched.tick(T0 + 121)
    assert held.held == T0 + 120 and held.runs == {}
    assert sched.get("nightly")["held"] == "2027-01-15T08:02:00.000000Z"
    rig.finish(first.runs[T0 + 60], plan, "a")
    [late] = sched.tick(T0 + 150)
    assert list(late.runs) == [T0 + 120]


def test_schedule_definitions_are_checked_in_one_line(rig: Rig, client: Client) -> None:
    sched = book(client, Clock(T0))
    wf = rig.flow().step("a", TASK).build()
    for kw, says in (
        ({"cron": "61 * * * *"}, "field 'cron'"),
        ({"cron": "* * *"}, "five fields"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "not an IANA time zone"),
        ({"cron": "0 3 * * *", "overlap": "sometimes"}, "field 'overlap'"),
        ({"cron": "0 3 * * *", "catchup": -1}, "field 'catchup'"),
    ):
        cron = str(kw.pop("cron"))
        with pytest.raises(SpecError) as info:
            sched.add("bad", wf, cron, **kw)  # type: ignore[arg-type]
        assert says in str(info.value) and "\n" not in str(info.value)
    sched.add("twice", wf, "0 3 * * *")
    with pytest.raises(OrchestratorError, match="exists"):
        sched.add("twice", wf, "0 3 * * *")
    with pytest.raises(NotFoundError):
        sched.pause("nobody")


def test_daylight_saving_nonexistent_times_run_at_the_next_instant_ambiguous_once() -> None:
    paris = ZoneInfo("Europe/Paris")
    spec = ScheduleSpec(name="n", workflow="w:1", cron="30 2 * * *", tz="Europe/Paris")
    spring = spec.next_after(datetime(2026, 3, 28, 12, tzinfo=paris).timestamp())
    assert datetime.fromtimestamp(spring, paris).isoformat() == "2026-03-29T03:00:00+02:00"
    fall = datetime(2026, 10, 24, 12, tzinfo=paris).timestamp()
    ticks = spec.latest(fall, fall + 2 * 86400, 5)
    assert [datetime.fromtimestamp(t, paris).isoformat() for t in ticks] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_which_due_ticks_fire() -> None:
    due = [1.0, 2.0, 3.0, 4.0]
    assert chosen(due, resumed_at=0, held=None, catchup=0) == [4.0]
    assert chosen(due, resumed_at=0, held=None, catchup=2) == [2.0, 3.0, 4.0]
    assert chosen(due, resumed_at=5, held=None, catchup=2) == [3.0, 4.0]
    assert chosen(due, resumed_at=0, held=1.0, catchup=1) == [1.0, 3.0, 4.0]
    assert chosen([], resumed_at=0, held=None, catchup=3) == []
    assert key_of("nightly", 1800000000.0) == "schedule:nightly:1800000000"
