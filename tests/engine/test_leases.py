"""Leases: heartbeats keep an attempt's lease, the sweep finds the ones that ran out."""

from __future__ import annotations

from orchestrator.store import Attempt
from orchestrator.store import outcomes as o
from tests.engine.helpers import ERROR, TASK, Rig, until


def lease_of(rig: Rig, attempt: Attempt) -> float | None:
    return rig.redis.zscore(rig.keys.leases, attempt.lease_member())


def test_a_heartbeat_extends_a_live_lease(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    attempt, _ = rig.claim(rig.start(plan), plan, "a")
    first = lease_of(rig, attempt)
    assert first is not None

    def renewed() -> bool:
        rig.upkeep.heartbeat(attempt)
        later = lease_of(rig, attempt)
        return later is not None and later > first

    until(renewed, "a heartbeat to push the lease's expiry later")


def test_a_heartbeat_answers_true_while_the_attempt_is_leased(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    attempt, _ = rig.claim(rig.start(plan), plan, "a")
    assert rig.upkeep.heartbeat(attempt) is True


def test_a_heartbeat_of_an_attempt_whose_lease_is_gone_answers_false(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).step("b", TASK).build())
    attempt, _ = rig.claim(rig.start(plan), plan, "a")
    assert isinstance(rig.engine.complete(attempt, "1", []), o.Recorded)
    assert rig.upkeep.heartbeat(attempt) is False
    assert lease_of(rig, attempt) is None


def test_an_expired_lease_is_handed_to_one_sweeper_and_its_attempt_fenced(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    run_id = rig.start(plan)
    short = rig.store_with(lease_seconds=0.2)
    attempt = Attempt(run_id, plan.ref, "a")
    assert isinstance(short.engine.claim(attempt, "doomed"), o.Run)
    sweeper = rig.store_with(lease_seconds=30).upkeep
    [found] = until(sweeper.expired_leases, "the lease to run out")
    assert (found.run_id, found.step, found.index, found.token) == (
        run_id,
        "a",
        None,
        attempt.token,
    )
    assert sweeper.expired_leases() == []
    lost = rig.engine.fail(Attempt(run_id, plan.ref, "a", token=found.token), ERROR, retry_in=1.0)
    assert isinstance(lost, o.Recorded)
    assert lost.retry_in == 1.0
    assert lease_of(rig, attempt) is None
    assert rig.engine.complete(attempt, '"too late"', []) == o.Stale("RETRYING")
