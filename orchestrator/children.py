"""Child workflows: what a `workflow: NAME[:VERSION]` step refers to, and its cycles.

Pure functions, no Redis. A parent names its child by name and optionally
version; the version is fixed when the parent is registered (the newest one
registered then, when none is given), so a parent version always starts the
same child version. A workflow that can start itself, directly or through
other workflows, must bound the recursion with ``max_depth`` on a step along
the cycle; otherwise the spec is refused.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping

from orchestrator.errors import SpecError
from orchestrator.spec import Workflow


def split_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name:version`` as (name, version or None)."""
    name, _, version = ref.partition(":")
    return name, int(version) if version else None


def child_steps(wf: Workflow) -> dict[str, str]:
    """Step -> the child workflow it names (as written), for every child workflow step."""
    return {name: spec.workflow for name, spec in wf.steps.items() if spec.workflow is not None}


def child_run_id(parent: str, step: str, index: int | None, attempt: int) -> str:
    """The id of the child a parent attempt starts: the same attempt never starts two.

    spawn.lua derives the same id (``redis.sha1hex``); a unit test keeps them equal.
    """
    idx = "" if index is None else str(index)
    return hashlib.sha1(f"{parent}|{step}|{idx}|{attempt}".encode()).hexdigest()[:16]


def check_cycles(workflows: Mapping[str, Workflow]) -> None:
    """Refuse a cycle of child workflows (by name) that no step's ``max_depth`` bounds.

    ``workflows`` maps a name to the spec known for it; names not in it are
    leaves. The error names the cycle and the step that starts it.
    """
    for name in sorted(workflows):
        cycle = _cycle_from(name, workflows)
        if cycle is None:
            continue
        edges = list(itertools.pairwise(cycle))
        bounded = any(
            spec.max_depth is not None
            for a, b in edges
            for spec in workflows[a].steps.values()
            if spec.workflow is not None and split_ref(spec.workflow)[0] == b
        )
        if bounded:
            continue
        first, second = edges[0]
        step = next(
            s
            for s, spec in sorted(workflows[first].steps.items())
            if spec.workflow is not None and split_ref(spec.workflow)[0] == second
        )
        raise SpecError(
            "cycle through child workflows " + " → ".join(cycle) + "; a workflow that can "
            "start itself needs a max_depth on a step along the cycle",
            where=f"workflow {first!r}, step {step!r}, field 'workflow'",
        )


def _cycle_from(start: str, workflows: Mapping[str, Workflow]) -> list[str] | None:
    """A path start → … → start through child references, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        wf = workflows.get(name)
        if wf is None:
            continue
        for ref in sorted(set(child_steps(wf).values())):
            child = split_ref(ref)[0]
            if child == start:
                return [*path, start]
            if child not in seen:
                seen.add(child)
                stack.append((child, [*path, child]))
    return None


def resolve_children(
    wf: Workflow, versions: Callable[[str], list[int]], spec_of: Callable[[str, int], Workflow]
) -> dict[str, str]:
    """Step -> the name:version each child workflow step starts, fixed at registration.

    ``versions`` lists a name's registered versions and ``spec_of`` reads one;
    a step naming no version gets the newest registered. The parent's own
    name (without a version, or with its own) is the parent itself. The tree
    of registered children is checked for cycles with ``wf`` at its root.
    """
    resolved: dict[str, str] = {}
    for step, written in child_steps(wf).items():
        name, version = split_ref(written)
        if name == wf.name and version in (None, wf.version):
            resolved[step] = wf.ref
            continue
        known = versions(name)
        where = f"workflow {wf.name!r}, step {step!r}, field 'workflow'"
        if not known or (version is not None and version not in known):
            what = f"workflow {written!r}" if version is None else f"version {version} of {name!r}"
            raise SpecError(f"{what} is not registered; register the child first", where=where)
        resolved[step] = f"{name}:{version if version is not None else max(known)}"
    tree: dict[str, Workflow] = {wf.name: wf}
    pending = list(resolved.values())
    while pending:
        name, version = split_ref(pending.pop())
        if name in tree or version is None:
            continue
        child = tree[name] = spec_of(name, version)
        pending += [r for r in child_steps(child).values() if ":" in r]
    check_cycles(tree)
    return resolved
