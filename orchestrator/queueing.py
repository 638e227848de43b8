"""The queueing model, producer side: a run's priority and fairness key, and the queue view.

Priority decides which work a worker takes next; the engine applies it in Lua
(dispatch.lua picks the kombu list, claiming.lua makes a runner lane yield).
Here a submit's arguments and the workflow's defaults become the two values
the submit script stores with the run, checked so that a bad value is one
clear line (exit 2) before anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.errors import OrchestratorError
from orchestrator.spec import input_value

if TYPE_CHECKING:
    from orchestrator.spec import Workflow

#: Longest fairness key accepted (it is part of a Redis key name).
MAX_KEY_LENGTH = 200


def run_priority(wf: Workflow, given: int | None) -> int:
    """The run's priority: the one given, else the workflow's ``priority``, else 0."""
    if given is None:
        return wf.priority if wf.priority is not None else 0
    if isinstance(given, bool) or not isinstance(given, int) or not 0 <= given <= 9:
        raise OrchestratorError(
            f"priority must be an integer from 0 to 9 (higher runs sooner), got {given!r}"
        )
    return given


def run_concurrency_key(wf: Workflow, run_input: Any) -> str | None:
    """The value the workflow's ``concurrency.key`` names in the input (required when declared)."""
    if wf.concurrency is None:
        return None
    found = input_value(wf.concurrency.key, run_input)
    if found is None:
        raise OrchestratorError(
            f"workflow {wf.name!r}: the run input has no {wf.concurrency.key.partition('.')[2]!r}, "
            f"which concurrency.key names"
        )
    if len(found) > MAX_KEY_LENGTH:
        raise OrchestratorError(f"concurrency key longer than {MAX_KEY_LENGTH} characters")
    return found


def run_fairness_key(wf: Workflow, run_input: Any, given: str | None) -> str | None:
    """The run's fairness key: the one given, else the input field ``fairness.key`` names."""
    if given is None and wf.fairness is not None:
        given = wf.fairness.key_of(run_input)
    if given is None:
        return None
    if not isinstance(given, str) or not given or len(given) > MAX_KEY_LENGTH:
        raise OrchestratorError(
            f"fairness key must be a non-empty string of at most {MAX_KEY_LENGTH} characters, "
            f"got {given!r}"
        )
    return given
