"""The run and step transition tables against DESIGN.md's "State machine" section.

The expected sets are written out here from the design text, not derived from
``orchestrator.states``, so a table edit that the design does not allow fails.
"""

from __future__ import annotations

import itertools
import re

import pytest

from orchestrator import states
from orchestrator.states import (
    RUN_REOPEN,
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    STEP_REOPEN,
    STEP_TERMINAL,
    STEP_TRANSITIONS,
    RunState,
    StepState,
    lua_table,
    run_transition_allowed,
    step_transition_allowed,
)

RUN_STATES = {
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "COMPENSATING",
    "COMPENSATED",
    "COMPENSATION_FAILED",
    "CANCELLING",
    "CANCELLED",
}
STEP_STATES = {
    "PENDING",
    "QUEUED",
    "RUNNING",
    "RETRYING",
    "SUCCEEDED",
    "FAILED",
    "SKIPPED",
    "WAITING",
    "COMPENSATING",
    "COMPENSATED",
    "COMPENSATION_FAILED",
}

# Run: PENDING → RUNNING → SUCCEEDED | FAILED | COMPENSATING → COMPENSATED |
# COMPENSATION_FAILED; any non-terminal → CANCELLING → CANCELLED.
RUN_NON_TERMINAL_CANCELLABLE = {"PENDING", "RUNNING", "COMPENSATING"}
EXPECTED_RUN = {
    ("PENDING", "RUNNING"),
    ("RUNNING", "SUCCEEDED"),
    ("RUNNING", "FAILED"),
    ("RUNNING", "COMPENSATING"),
    ("COMPENSATING", "COMPENSATED"),
    ("COMPENSATING", "COMPENSATION_FAILED"),
    # Beyond DESIGN.md's diagram: a failed run with nothing left to undo ends FAILED.
    ("COMPENSATING", "FAILED"),
    *((src, "CANCELLING") for src in RUN_NON_TERMINAL_CANCELLABLE),
    ("CANCELLING", "CANCELLED"),
}
EXPECTED_RUN_TERMINAL = {"SUCCEEDED", "FAILED", "COMPENSATED", "COMPENSATION_FAILED", "CANCELLED"}

# Step: PENDING → QUEUED → RUNNING → SUCCEEDED | RETRYING → QUEUED | FAILED;
# PENDING → SKIPPED; PENDING → WAITING → SUCCEEDED | FAILED;
# SUCCEEDED → COMPENSATING → COMPENSATED | COMPENSATION_FAILED.
EXPECTED_STEP = {
    ("PENDING", "QUEUED"),
    ("QUEUED", "RUNNING"),
    ("RUNNING", "SUCCEEDED"),
    ("RUNNING", "RETRYING"),
    ("RUNNING", "FAILED"),
    ("RETRYING", "QUEUED"),
    ("PENDING", "SKIPPED"),
    ("PENDING", "WAITING"),
    ("WAITING", "SUCCEEDED"),
    ("WAITING", "FAILED"),
    # Beyond DESIGN.md's diagram: `on_timeout: skip` skips a step nobody signalled.
    ("WAITING", "SKIPPED"),
    # Child workflows: a step waits for its child run, then an attempt records its end.
    ("RUNNING", "WAITING"),
    ("WAITING", "RUNNING"),
    ("SUCCEEDED", "COMPENSATING"),
    ("COMPENSATING", "COMPENSATED"),
    ("COMPENSATING", "COMPENSATION_FAILED"),
}
EXPECTED_STEP_TERMINAL = {"FAILED", "SKIPPED", "COMPENSATED", "COMPENSATION_FAILED"}

# Beyond DESIGN.md: the issue's `orch compensate RUN` retries a compensation that
# failed for good, so an operator (never the engine) may reopen such a run.
# A parent that compensates reopens its succeeded child run to undo it as a whole.
EXPECTED_RUN_REOPEN = {
    ("COMPENSATION_FAILED", "COMPENSATING"),
    ("CANCELLED", "CANCELLING"),
    ("SUCCEEDED", "COMPENSATING"),
}
EXPECTED_STEP_REOPEN = {("COMPENSATION_FAILED", "COMPENSATING")}


def test_state_enums_are_exactly_the_designed_states() -> None:
    assert {s.value for s in RunState} == RUN_STATES
    assert {s.value for s in StepState} == STEP_STATES
    assert all(s.value == s.name for s in (*RunState, *StepState))


def test_tables_have_a_row_for_every_state() -> None:
    assert set(RUN_TRANSITIONS) == set(RunState)
    assert set(STEP_TRANSITIONS) == set(StepState)


@pytest.mark.parametrize(
    ("src", "dst"), list(itertools.product(sorted(RUN_STATES), sorted(RUN_STATES)))
)
def test_every_run_pair(src: str, dst: str) -> None:
    allowed = run_transition_allowed(RunState(src), RunState(dst))
    assert allowed == ((src, dst) in EXPECTED_RUN), f"run {src} → {dst}"


@pytest.mark.parametrize(
    ("src", "dst"), list(itertools.product(sorted(STEP_STATES), sorted(STEP_STATES)))
)
def test_every_step_pair(src: str, dst: str) -> None:
    allowed = step_transition_allowed(StepState(src), StepState(dst))
    assert allowed == ((src, dst) in EXPECTED_STEP), f"step {src} → {dst}"


def test_terminal_states_have_no_way_out() -> None:
    assert {s.value for s in RUN_TERMINAL} == EXPECTED_RUN_TERMINAL
    assert {s.value for s in STEP_TERMINAL} == EXPECTED_STEP_TERMINAL
    for src in EXPECTED_RUN_TERMINAL:
        assert not any(run_transition_allowed(RunState(src), dst) for dst in RunState)
    for src in EXPECTED_STEP_TERMINAL:
        assert not any(step_transition_allowed(StepState(src), dst) for dst in StepState)


def test_no_self_transitions() -> None:
    assert not any(run_transition_allowed(s, s) for s in RunState)
    assert not any(step_transition_allowed(s, s) for s in StepState)


def test_every_state_is_reachable_from_pending() -> None:
    def reachable(edges: set[tuple[str, str]]) -> set[str]:
        seen, frontier = {"PENDING"}, ["PENDING"]
        while frontier:
            src = frontier.pop()
            for a, b in edges:
                if a == src and b not in seen:
                    seen.add(b)
                    frontier.append(b)
        return seen

    run_edges = {(a.value, b.value) for a, bs in RUN_TRANSITIONS.items() for b in bs}
    step_edges = {(a.value, b.value) for a, bs in STEP_TRANSITIONS.items() for b in bs}
    assert reachable(run_edges) == RUN_STATES
    assert reachable(step_edges) == STEP_STATES


def test_client_terminal_set_matches_the_table() -> None:
    from orchestrator import client

    assert set(client.TERMINAL) == EXPECTED_RUN_TERMINAL


_STRING = re.compile(r"^local (MOVES|REOPENS) = '\|((?:[a-z]+:[A-Z_]+>[A-Z_]+\|)*)'$")


def _parse_lua(text: str) -> dict[str, dict[str, set[str]]]:
    """``{section: {from: {to}}}``, sections run, step, reopen_run, reopen_step."""
    tables: dict[str, dict[str, set[str]]] = {}
    for line in text.splitlines():
        match = _STRING.match(line)
        assert match, f"unexpected line {line!r}"
        prefix = "" if match.group(1) == "MOVES" else "reopen_"
        for entry in filter(None, match.group(2).split("|")):
            kind, _, pair = entry.partition(":")
            src, _, dst = pair.partition(">")
            targets = tables.setdefault(prefix + kind, {}).setdefault(src, set())
            assert dst not in targets, f"{entry} appears twice"
            targets.add(dst)
    return tables


def test_lua_table_encodes_exactly_the_designed_pairs() -> None:
    text = lua_table()
    assert text.startswith("local MOVES = '|")
    tables = _parse_lua(text)
    assert set(tables) == {"run", "step", "reopen_run", "reopen_step"}
    # Every state with a move out appears as a source; terminal states have none.
    assert set(tables["run"]) == RUN_STATES - EXPECTED_RUN_TERMINAL
    assert set(tables["step"]) == {a for a, _ in EXPECTED_STEP}
    run_pairs = {(a, b) for a, bs in tables["run"].items() for b in bs}
    step_pairs = {(a, b) for a, bs in tables["step"].items() for b in bs}
    assert run_pairs == EXPECTED_RUN
    assert step_pairs == EXPECTED_STEP
    assert {(a, b) for a, bs in tables["reopen_run"].items() for b in bs} == EXPECTED_RUN_REOPEN
    assert {(a, b) for a, bs in tables["reopen_step"].items() for b in bs} == EXPECTED_STEP_REOPEN


def test_lua_table_is_deterministic_and_plain() -> None:
    text = lua_table()
    assert lua_table() == text
    # Nothing in the strings but kinds, state names and the separators.
    assert len(text.splitlines()) == 2
    assert all(_STRING.match(line) for line in text.splitlines())


def test_module_has_one_table_per_machine() -> None:
    tables = [
        name
        for name, value in vars(states).items()
        if isinstance(value, dict) and name.endswith("TRANSITIONS")
    ]
    assert sorted(tables) == ["RUN_TRANSITIONS", "STEP_TRANSITIONS"]


def test_operator_reopenings_are_exactly_the_designed_pairs() -> None:
    run_pairs = {(a.value, b.value) for a, bs in RUN_REOPEN.items() for b in bs}
    step_pairs = {(a.value, b.value) for a, bs in STEP_REOPEN.items() for b in bs}
    assert run_pairs == EXPECTED_RUN_REOPEN
    assert step_pairs == EXPECTED_STEP_REOPEN


def test_reopenings_leave_only_terminal_states_and_are_not_engine_moves() -> None:
    for src, dsts in (*RUN_REOPEN.items(), *STEP_REOPEN.items()):
        assert src in RUN_TERMINAL | STEP_TERMINAL
        for dst in dsts:
            assert not isinstance(src, RunState) or not run_transition_allowed(src, dst)
            assert not isinstance(src, StepState) or not step_transition_allowed(src, dst)
