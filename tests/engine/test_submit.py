"""register and submit: versions are immutable, keys are idempotent, roots are dispatched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator import Client, Flow, compiler, graph
from orchestrator.compiler import compile_plan
from orchestrator.messages import priority_lists
from orchestrator.settings import Settings
from orchestrator.store import outcomes as o
from tests.engine.helpers import TASK, Rig, run_moves


@pytest.fixture
def client(rig: Rig) -> Iterator[Client]:
    url = rig.redis.connection_pool.connection_kwargs
    c = Client(
        f"redis://{url['host']}:{url['port']}/0",
        settings=Settings(key_prefix=rig.keys.prefix, default_queue=rig.queue),
    )
    yield c
    c.close()


def test_register_twice_is_exists_and_changed_content_is_a_conflict(rig: Rig) -> None:
    wf = rig.flow().step("a", TASK).build()
    rig.install(wf)
    assert rig.engine.register(wf, compile_plan(wf)) == o.Registered(created=False)
    changed = rig.flow().step("a", TASK).step("b", TASK, after=["a"]).build()
    assert rig.engine.register(changed, compile_plan(changed)) == o.Conflict()


def test_submit_creates_a_running_run_and_queues_its_roots(rig: Rig) -> None:
    plan = rig.install(
        rig.flow().step("a", TASK).step("b", TASK).step("c", TASK, after=["a"]).build()
    )
    submitted = rig.engine.submit(plan, '{"x": 1}', key=None)
    assert isinstance(submitted, o.Submitted)
    assert submitted.created
    assert run_moves(submitted) == [(None, "PENDING"), ("PENDING", "RUNNING")]
    run_id = submitted.run_id
    assert rig.state(run_id) == "RUNNING"
    assert [rig.state(run_id, s) for s in "abc"] == ["QUEUED", "QUEUED", "PENDING"]
    assert sorted(rig.messages()) == [f"{rig.name}.a", f"{rig.name}.b"]
    assert rig.reads.status(run_id)["input"] == {"x": 1}
    assert run_id in rig.reads.recent_runs(10)


def test_same_idempotency_key_finds_the_existing_run(rig: Rig) -> None:
    plan = rig.install(rig.flow().step("a", TASK).build())
    first = rig.engine.submit(plan, '{"x": 1}', key="order-7")
    second = rig.engine.submit(plan, '{"x": 2}', key="order-7")
    other = rig.engine.submit(plan, '{"x": 1}', key="order-8")
    assert isinstance(first, o.Submitted)
    assert first.created
    assert second == o.Submitted(first.run_id, created=False)
    assert isinstance(other, o.Submitted)
    assert other.created
    assert other.run_id != first.run_id
    assert rig.count("a") == 2
    assert rig.reads.status(first.run_id)["input"] == {"x": 1}


def test_submit_of_an_unregistered_version_is_noplan(rig: Rig) -> None:
    wf = rig.flow().step("a", TASK).build()
    plan = compile_plan(wf)
    assert rig.engine.submit(plan, "{}", key=None) == o.NoPlan(plan.ref)
    assert rig.messages() == []


def test_workflow_names_come_from_register_and_a_listing_made_before_the_set(rig: Rig) -> None:
    first = rig.flow().step("a", TASK).build()
    rig.install(first)
    rig.redis.delete(rig.keys.workflows)  # as if registered before the set existed
    assert rig.reads.workflow_names() == [rig.name]  # found by the one scan
    assert rig.redis.sismember(rig.keys.workflows, "")  # the set now says it is whole
    later = Flow(rig.name + "-later", 1).step("a", TASK).build()
    rig.install(later)
    rig.redis.delete(rig.keys.workflow(rig.name))  # a scan would miss it; the set does not
    assert rig.reads.workflow_names() == [rig.name, rig.name + "-later"]


def test_a_workflow_object_submitted_again_is_not_checked_again(
    rig: Rig, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = rig.flow().step("a", TASK).build()
    first = client.submit(wf, {})

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("checked again")

    monkeypatch.setattr(graph, "validate", refuse)
    monkeypatch.setattr(compiler, "compile_plan", refuse)
    second = client.submit(wf, {"x": 1})  # the registered object: validated and compiled once
    assert second.id != first.id
    assert rig.count("a") == 2
    with pytest.raises(AssertionError, match="checked again"):  # an equal, other object is
        client.submit(rig.flow().step("a", TASK).build(), {})


def test_a_root_message_has_every_placeholder_filled(rig: Rig, client: Client) -> None:
    run = client.submit(rig.flow().step("a", TASK).build(), {}, priority=3)
    [raw] = [m for q in priority_lists(rig.queue) for m in rig.redis.lrange(q, 0, -1)]
    assert b"@" not in raw
    message = json.loads(raw)
    assert message["headers"]["id"] == f"{run.id}-a"
    assert json.loads(message["body"])[0][0] == run.id
    assert message["properties"]["priority"] == 6
    assert message["properties"]["delivery_tag"].startswith(f"{run.id}.")
