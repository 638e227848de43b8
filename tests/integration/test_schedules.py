"""Schedules fired by three real workers against one Redis.

The schedules tick every two seconds (a six-field cron, seconds first), so
real ticks pass within a test. Which ticks fired is read from the runs'
idempotency keys (``schedule:{name}:{tick}``); the waits are bounded polls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Flow
from orchestrator.clock import redis_now
from orchestrator.runs import TERMINAL
from orchestrator.schedules import ScheduleSpec
from tests.integration.helpers import Cluster, private_cluster, wait_until

pytestmark = [pytest.mark.integration]

EVERY_2S = "*/2 * * * * *"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("schedules")
    queue = f"sched-{uuid.uuid4().hex[:8]}"
    with private_cluster(Path(base), queue=queue, processes=3, concurrency=1, lease=5) as c:
        yield c


def fired(cluster: Cluster, name: str) -> dict[int, str]:
    """Tick -> run id of every run the schedule started."""
    found = {}
    for key in cluster.r.scan_iter(f"orch:key:*:schedule:{name}:*"):
        found[int(key.rsplit(":", 1)[1])] = cluster.r.get(key)
    return found


def add(cluster: Cluster, **kw: object) -> tuple[str, ScheduleSpec]:
    name = f"s-{uuid.uuid4().hex[:8]}"
    wf = Flow(f"w-{name}", 1).step("a", "tests.steps.basic:emit", queue=cluster.queue).build()
    doc = cluster.client.schedules.add(name, wf, EVERY_2S, **kw)  # type: ignore[arg-type]
    return name, ScheduleSpec.model_validate({k: doc[k] for k in ScheduleSpec.model_fields})


def test_three_workers_start_exactly_one_run_per_tick(cluster: Cluster) -> None:
    name, spec = add(cluster, overlap="allow", catchup=100)
    wait_until(lambda: len(fired(cluster, name)) >= 5, timeout=60)
    cluster.client.schedules.pause(name)
    runs = fired(cluster, name)
    ticks = sorted(runs)
    expected = spec.latest(ticks[0], ticks[-1], 1000)
    assert ticks == [int(t) for t in expected], "a tick was skipped or fired off the cron"
    assert len(set(runs.values())) == len(runs), "two ticks share a run"
    for run_id in runs.values():
        wait_until(lambda r=run_id: cluster.client.run(r).state() in TERMINAL, timeout=60)
        assert cluster.client.run(run_id).state() == "SUCCEEDED"
    listed = {d["name"]: d for d in cluster.client.schedules.list()}
    assert listed[name]["paused"] is True
    assert listed[name]["last_run"] in fired(cluster, name).values()
    cluster.client.schedules.remove(name)


def test_a_resumed_schedule_catches_up_the_latest_missed_ticks(cluster: Cluster) -> None:
    name, spec = add(cluster, overlap="allow", catchup=2)
    wait_until(lambda: len(fired(cluster, name)) >= 1, timeout=60)
    cluster.client.schedules.pause(name)
    paused_at = float(cluster.r.hget(f"orch:schedule:{name}", "paused_at") or 0)
    before = max(fired(cluster, name))
    wait_until(lambda: redis_now(cluster.r) > paused_at + 7, timeout=30)  # >= 3 ticks pass
    cluster.client.schedules.resume(name)
    resumed_at = float(cluster.r.hget(f"orch:schedule:{name}", "resumed_at") or 0)
    wait_until(lambda: max(fired(cluster, name)) >= resumed_at, timeout=60)  # on time again
    cluster.client.schedules.pause(name)
    missed = [int(t) for t in spec.latest(before + 1, resumed_at - 1e-6, 1000)]
    assert len(missed) >= 3
    late = sorted(t for t in fired(cluster, name) if before < t < resumed_at)
    assert late == missed[-2:], f"missed {missed}, fired late {late}"
    cluster.client.schedules.remove(name)
