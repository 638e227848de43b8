"""Child workflows on real Redis and real Celery workers.

- a three-level tree (top → mid → leaf) whose leaf fails: each level's saga
  runs once its child has ended, so the compensations run leaf first; when
  the top fails after its children succeeded, each succeeded child is undone
  as a whole, in the parent's reverse completion order (README "Child
  workflows" documents both orders);
- cancelling the top mid-tree cancels every run below it: none is left
  running, and the completed steps of each level are undone, deepest first;
- SIGKILL of the worker process that starts a child, before or after the
  child run is created: the run still succeeds, with exactly one child.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator import Client, Flow, Workflow
from tests.integration.helpers import private_cluster, wait_until
from tests.steps.children import pause_key, undone_key
from workers.pool import WorkerPool

S = "tests.steps.children"
ONCE = {"max_attempts": 1}


def names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"leaf-{tag}", f"mid-{tag}", f"top-{tag}"


def tree(leaf_last: str = f"{S}:work") -> tuple[Workflow, Workflow, Workflow]:
    """leaf: l1 → l2; mid: m1 → down (leaf) → m2; top: p1 → down (mid) → p2 → p3."""
    leaf_name, mid_name, top_name = names()
    comp = f"{S}:undo"
    leaf = (
        Flow(leaf_name, 1)
        .step("l1", f"{S}:work", compensate=comp)
        .step("l2", leaf_last, after=["l1"], compensate=comp)
        .build()
    )
    mid = (
        Flow(mid_name, 1)
        .step("m1", f"{S}:work", compensate=comp)
        .step("down", workflow=leaf_name, after=["m1"], retry=ONCE)  # the newest leaf version
        .step("m2", f"{S}:work", after=["down"], compensate=comp)
        .build()
    )
    top = (
        Flow(top_name, 1)
        .step("p1", f"{S}:work", compensate=comp)
        .step("down", workflow=f"{mid_name}:1", after=["p1"], retry=ONCE)
        .step("p2", f"{S}:work", after=["down"], compensate=comp)
        .step("p3", f"{S}:work", after=["p2"])
        .build()
    )
    return leaf, mid, top


def runs_below(client: Client, run_id: str) -> list[dict[str, Any]]:
    """The status documents of every run under ``run_id`` (children, theirs, ...)."""
    found, pending = [], [run_id]
    while pending:
        doc = client.run(pending.pop()).status()
        kids = [s["child"] for s in doc["steps"].values() if s.get("child")]
        found += [client.run(k).status() for k in kids]
        pending += kids
    return found


@pytest.mark.parametrize(
    ("fail_at", "undone"),
    [
        ("l2", ["l1", "m1", "p1"]),
        ("p3", ["p2", "m2", "l2", "l1", "m1", "p1"]),
    ],
)
def test_a_three_level_tree_compensates_in_the_documented_order(
    client: Client, workers: WorkerPool, r: redis.Redis, fail_at: str, undone: list[str]
) -> None:
    leaf, mid, top = tree()
    client.register(leaf)
    client.register(mid)
    key = uuid.uuid4().hex
    run = client.submit(top, {"tree": key, "fail_at": fail_at})
    doc = run.wait(timeout=60)
    assert doc["state"] == "COMPENSATED", doc
    assert r.lrange(undone_key(key), 0, -1) == undone
    middle = client.run(doc["steps"]["down"]["child"]).status()
    assert middle["parent"] == {"run": run.id, "step": "down"}
    assert middle["workflow"] == mid.name
    low = client.run(middle["steps"]["down"]["child"]).status()
    assert low["parent"] == {"run": middle["id"], "step": "down"}
    assert low["input"]["tree"] == key  # run-input fields reach the grandchild
    if fail_at == "l2":
        assert [middle["state"], low["state"]] == ["COMPENSATED", "COMPENSATED"]
        assert doc["steps"]["down"]["state"] == "FAILED"
        assert "ChildRunFailed" in doc["steps"]["down"]["error"]
    else:
        # Succeeded children, reopened and undone as a whole.
        assert [middle["state"], low["state"]] == ["COMPENSATED", "COMPENSATED"]
        assert doc["steps"]["down"]["state"] == "COMPENSATED"
        assert middle["steps"]["down"]["output"] == "l2 done"  # the leaf's result


def test_cancelling_the_top_mid_tree_leaves_no_child_running(
    client: Client, workers: WorkerPool, r: redis.Redis
) -> None:
    leaf, mid, top = tree(leaf_last=f"{S}:slow")
    client.register(leaf)
    client.register(mid)
    key = uuid.uuid4().hex
    run = client.submit(top, {"tree": key})
    wait_until(lambda: r.lrange(f"children:started:{key}", 0, -1) == ["l2"], timeout=30)
    assert client.cancel(run.id, "mid-tree") == "CANCELLING"
    doc = run.wait(timeout=60)
    assert doc["state"] == "CANCELLED", doc
    below = runs_below(client, run.id)
    assert [d["state"] for d in below] == ["CANCELLED", "CANCELLED"]
    # l2 ends its body on the cancel and succeeds: it is undone too, before l1.
    assert r.lrange(undone_key(key), 0, -1) == ["l2", "l1", "m1", "p1"]


@pytest.fixture(params=["PauseBeforeSpawn", "PauseAfterSpawn"])
def paused(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, str, str]]:
    queue = f"kids-{uuid.uuid4().hex[:8]}"
    env = {"ORCH_HOOKS": f"{S}:{request.param}"}
    with private_cluster(
        tmp_path, queue=queue, processes=2, concurrency=1, lease=2.0, env=env
    ) as cluster:
        monkeypatch.setenv("ORCH_REDIS_URL", cluster.server.url)
        yield cluster, queue, request.param


def test_killing_the_worker_that_starts_a_child_leaves_exactly_one_child(
    paused: tuple[Any, str, str],
) -> None:
    cluster, queue, where_paused = paused
    leaf_name, _, top_name = names()
    leaf = Flow(leaf_name, 1).step("l1", f"{S}:work", queue=queue).build()
    fast = {"max_attempts": 3, "initial": 0.1, "max": 0.5}
    top = Flow(top_name, 1).step("down", workflow=f"{leaf_name}:1", queue=queue, retry=fast).build()
    cluster.client.register(leaf)
    key = uuid.uuid4().hex
    run = cluster.client.submit(top, {"tree": key})
    wait_until(lambda: cluster.r.get(pause_key("down")) is not None, timeout=30)
    where = json.loads(cluster.r.get(pause_key("down")))
    assert where["run"] == run.id
    assert where["ppid"] in {w.pid for w in cluster.pool.workers}
    os.kill(where["pid"], signal.SIGKILL)
    doc = run.wait(timeout=60)
    assert doc["state"] == "SUCCEEDED", doc
    children = [
        rid
        for rid in cluster.client.reads.recent_runs(100)
        if cluster.client.run(rid).status().get("parent", {}).get("run") == run.id
    ]
    assert children == [doc["steps"]["down"]["child"]]
    assert doc["result"] == "l1 done"
    # Killed before its child started, the attempt was lost and the retry started the
    # child; killed after, the child of the first attempt is the one.
    assert doc["steps"]["down"]["attempts"] == (2 if where_paused == "PauseBeforeSpawn" else 1)


def test_a_map_over_a_child_workflow_starts_one_child_per_element(
    client: Client, workers: WorkerPool
) -> None:
    leaf_name, _, top_name = names()
    leaf = Flow(leaf_name, 1).step("twice", f"{S}:double").build()
    top = (
        Flow(top_name, 1)
        .step("items", f"{S}:items")
        .step("each", workflow=leaf_name, map="items")
        .build()
    )
    client.register(leaf)
    doc = client.submit(top, {"count": 4}).wait(timeout=60)
    assert doc["state"] == "SUCCEEDED", doc
    out = doc["steps"]["each"]["output"]
    assert [o["doubled"] for o in out] == [2, 4, 6, 8]  # each element arrived as `items`
    kids = doc["steps"]["each"]["children"]  # in the order they started
    assert sorted(kids) == sorted(o["run"] for o in out)
    assert len(set(kids)) == 4  # one child per element
    for kid in kids:
        parent = client.run(kid).status()["parent"]
        assert (parent["run"], parent["step"]) == (doc["id"], "each")
        assert out[parent["index"]]["run"] == kid  # the outputs are in element order
