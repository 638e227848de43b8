"""Celery task messages prepared as templates for the dispatch scripts."""

from __future__ import annotations

import json
from bisect import bisect
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu.transport.redis import Channel

from orchestrator.compiler import Plan, compile_plan
from orchestrator.loader import workflow_from_data
from orchestrator.messages import (
    IDX,
    KOMBU_PRIORITY_STEPS,
    PRI,
    PRIORITY_SEP,
    RUN,
    TAG,
    priority_list,
    priority_lists,
    queue_list_key,
    step_template,
)
from tests.unit.dags import PROPERTY

TASK = "tests.unit.stepfns:noop"


def plan() -> Plan:
    wf = workflow_from_data(
        {
            "name": "triage",
            "version": 3,
            "steps": {
                "fetch": {"task": TASK},
                "chunk": {"task": TASK, "after": ["fetch"]},
                "embed": {"task": TASK, "map": "chunk", "queue": "embed"},
                "review": {"wait_for": "approval", "after": ["fetch"]},
            },
        }
    )
    return compile_plan(wf)


def fill(template: str, run: str, idx: int, tag: str) -> str:
    return template.replace(RUN, run).replace(IDX, str(idx)).replace(TAG, tag).replace(PRI, "9")


def message(step: str, run: str = "r-123", idx: int = 7, tag: str = "r-123.1.1") -> dict[str, Any]:
    p = plan()
    return json.loads(fill(step_template(p, p.steps[step]), run, idx, tag))


@pytest.mark.parametrize("step", ["fetch", "chunk", "review"])
def test_plain_step_message(step: str) -> None:
    p = plan()
    msg = message(step)
    body = json.loads(msg["body"])
    assert isinstance(msg["body"], str)
    args, kwargs, embed = body
    assert args == ["r-123", "triage:3", step, None]
    assert kwargs == {}
    assert embed == {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    headers = msg["headers"]
    assert headers["task"] == "orch.step"
    assert headers["shadow"] == f"triage.{step}"
    assert headers["id"] == p.steps[step].task_id("r-123") == f"r-123-{step}"
    assert headers["root_id"] == "r-123"
    assert headers["lang"] == "py"
    assert headers["retries"] == 0
    props = msg["properties"]
    assert props["correlation_id"] == headers["id"]
    assert props["delivery_tag"] == "r-123.1.1"
    assert props["delivery_info"]["routing_key"] == "orch"
    assert msg["content-type"] == "application/json"
    assert msg["content-encoding"] == "utf-8"
    assert "body_encoding" not in msg["properties"]


def test_plain_step_template_has_no_index_placeholder() -> None:
    p = plan()
    assert IDX not in step_template(p, p.steps["fetch"])
    assert RUN in step_template(p, p.steps["fetch"])
    assert TAG in step_template(p, p.steps["fetch"])


def test_mapped_step_message_carries_the_index() -> None:
    p = plan()
    msg = message("embed", idx=12)
    args, kwargs, _ = json.loads(msg["body"])
    assert args == ["r-123", "triage:3", "embed", 12]
    assert isinstance(args[3], int)
    assert kwargs == {}
    assert msg["headers"]["id"] == p.steps["embed"].task_id("r-123", 12) == "r-123-embed-12"
    assert msg["headers"]["shadow"] == "triage.embed"
    assert msg["properties"]["delivery_info"]["routing_key"] == "embed"


def test_protocol_two_headers_are_present() -> None:
    headers = message("fetch")["headers"]
    required = {
        "lang", "task", "id", "root_id", "parent_id", "group", "retries", "eta",
        "expires", "timelimit", "argsrepr", "kwargsrepr", "origin",
    }  # fmt: skip
    assert required <= set(headers)
    assert headers["timelimit"] == [None, None]
    assert headers["ignore_result"] is True


def test_origin_is_configurable() -> None:
    p = plan()
    msg = json.loads(fill(step_template(p, p.steps["fetch"], origin="w1@h"), "r", 0, "t"))
    assert msg["headers"]["origin"] == "w1@h"


run_ids = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)


@PROPERTY
@given(
    run_ids,
    st.integers(0, 10**9),
    st.from_regex(r"[A-Za-z0-9_.-]{1,60}", fullmatch=True),
    st.sampled_from(["fetch", "chunk", "embed", "review"]),
)
def test_templates_are_valid_json_after_substitution(
    run: str, idx: int, tag: str, step: str
) -> None:
    p = plan()
    msg = json.loads(fill(step_template(p, p.steps[step]), run, idx, tag))
    args, _, _ = json.loads(msg["body"])
    mapped = p.steps[step].map_source is not None
    assert args == [run, "triage:3", step, idx if mapped else None]
    assert msg["headers"]["id"] == p.steps[step].task_id(run, idx if mapped else None)
    assert msg["properties"]["delivery_tag"] == tag
    assert msg["headers"]["root_id"] == run


# --- queue list keys -------------------------------------------------------------


def kombu_key(queue: str, priority: int, steps: list[int] | None = None) -> str:
    """The list kombu's Redis channel reads for ``queue`` at ``priority``."""
    chan = SimpleNamespace(priority_steps=steps or Channel.priority_steps, sep=Channel.sep)
    chan.priority = lambda n: chan.priority_steps[bisect(chan.priority_steps, n) - 1]
    return Channel._q_for_pri(chan, queue, priority)  # type: ignore[arg-type]


def test_separator_is_kombus() -> None:
    assert PRIORITY_SEP == "\x06\x16" == Channel.sep


@pytest.mark.parametrize("priority", [0, -1, -10])
def test_priority_zero_or_below_is_the_plain_list(priority: int) -> None:
    assert queue_list_key("orch", priority) == "orch"
    assert queue_list_key("orch") == "orch"


@pytest.mark.parametrize("priority", [3, 6, 9])
def test_positive_priority_adds_the_separator(priority: int) -> None:
    assert queue_list_key("embed", priority) == f"embed\x06\x16{priority}"
    assert queue_list_key("embed", priority) == kombu_key("embed", priority)


def test_every_priority_maps_to_a_list_kombu_reads() -> None:
    """kombu consumes only the lists of its priority steps (0, 3, 6, 9); the docstring
    promises "the Redis list kombu reads", so other priorities must round like kombu's."""
    read_by_kombu = {kombu_key("embed", p) for p in Channel.priority_steps}
    stranded = [p for p in range(0, 12) if queue_list_key("embed", p) not in read_by_kombu]
    assert stranded == [], f"priorities whose list no kombu consumer reads: {stranded}"


def kombu_poll_order(queue: str) -> list[str]:
    """The lists a worker's BRPOP names, in order (kombu's _brpop_start, one queue)."""
    return [kombu_key(queue, p, KOMBU_PRIORITY_STEPS) for p in KOMBU_PRIORITY_STEPS]


def test_workers_poll_the_highest_priority_first() -> None:
    """Priority 9 is kombu's plain list, polled first; 0 is level 9, polled last."""
    assert priority_lists("embed") == kombu_poll_order("embed")
    assert priority_list("embed", 9) == "embed"
    assert priority_list("embed", 0) == "embed\x06\x169"
    assert kombu_poll_order("embed").index(priority_list("embed", 7)) == 2


@pytest.mark.parametrize("priority", range(10))
def test_a_restored_message_goes_back_to_its_own_list(priority: int) -> None:
    """kombu restores an unacknowledged message to the list of its "priority" property."""
    p = plan()
    level = str(9 - priority)
    filled = step_template(p, p.steps["fetch"]).replace(RUN, "r").replace(TAG, "t")
    envelope = json.loads(filled.replace(PRI, level))
    restored = kombu_key("orch", envelope["properties"]["priority"], KOMBU_PRIORITY_STEPS)
    assert restored == priority_list("orch", priority)


def test_time_limits_give_a_soft_limit_and_a_later_hard_one() -> None:
    from orchestrator.messages import time_limits

    assert time_limits(None) == [None, None]
    hard, soft = time_limits(1.0)
    assert soft == 1.0
    assert hard is not None and hard >= soft + 2.0
    hard, soft = time_limits(100.0)
    assert soft == 100.0 and hard == 120.0


def test_lease_member_round_trips() -> None:
    from orchestrator.store import Attempt

    for index in (None, 0, 17):
        attempt = Attempt("run1", "wf:1", "embed", index)
        back = Attempt.from_lease_member(attempt.lease_member(), "wf:1")
        assert (back.run_id, back.ref, back.step, back.index, back.token) == (
            "run1", "wf:1", "embed", index, attempt.token,
        )  # fmt: skip
