"""Random graphs for the property tests of graph validation and the compiler.

A generated ``Dag`` keeps its own record of every edge (``after`` plus the
``map`` source), independent of the product's ``StepSpec.upstreams``, so the
tests compare the product against this record rather than against itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from orchestrator.loader import workflow_from_data
from orchestrator.spec import Workflow

#: Modest settings for the unit tier; derandomized so a run is reproducible.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

TASK = "tests.unit.stepfns:noop"
QUEUES = ("orch", "embed", "slow")

step_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: s != "ctx"
)


@dataclass(frozen=True)
class Dag:
    """A step graph: ``names`` in generation order, edges from ``after`` and ``maps``."""

    names: tuple[str, ...]
    after: dict[str, tuple[str, ...]]
    maps: dict[str, str]
    queues: dict[str, str]

    def upstreams(self, name: str) -> set[str]:
        ups = set(self.after[name])
        if name in self.maps:
            ups.add(self.maps[name])
        return ups

    def downstreams(self, name: str) -> set[str]:
        return {d for d in self.names if name in self.upstreams(d)}

    def edges(self) -> set[tuple[str, str]]:
        """(upstream, downstream) pairs: data flows from the first to the second."""
        return {(u, d) for d in self.names for u in self.upstreams(d)}

    def data(self, order: list[str] | None = None) -> dict[str, Any]:
        steps: dict[str, Any] = {}
        for name in order or self.names:
            spec: dict[str, Any] = {"task": TASK, "after": list(self.after[name])}
            if name in self.maps:
                spec["map"] = self.maps[name]
            if name in self.queues:
                spec["queue"] = self.queues[name]
            steps[name] = spec
        return {"name": "dag", "version": 1, "steps": steps}

    def workflow(self, order: list[str] | None = None) -> Workflow:
        return workflow_from_data(self.data(order))


@st.composite
def dags(draw: st.DrawFn, min_nodes: int = 1, max_nodes: int = 30) -> Dag:
    """A random DAG: every edge goes from a lower to a higher generation index."""
    names = draw(st.lists(step_names, min_size=min_nodes, max_size=max_nodes, unique=True))
    after: dict[str, tuple[str, ...]] = {}
    maps: dict[str, str] = {}
    queues: dict[str, str] = {}
    for i, name in enumerate(names):
        earlier = names[:i]
        if earlier:
            ups = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=min(i, 5)))
            after[name] = tuple(ups)
            source = draw(st.one_of(st.none(), st.none(), st.sampled_from(earlier)))
            if source is not None:
                maps[name] = source
        else:
            after[name] = ()
        queue = draw(st.one_of(st.none(), st.sampled_from(QUEUES)))
        if queue is not None:
            queues[name] = queue
    return Dag(tuple(names), after, maps, queues)


@st.composite
def cyclic_dags(draw: st.DrawFn, max_nodes: int = 30) -> Dag:
    """A random DAG with one back edge closing a chain of at least two steps."""
    dag = draw(dags(min_nodes=2, max_nodes=max_nodes))
    n = len(dag.names)
    idx = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=n, unique=True)))
    chain = [dag.names[i] for i in idx]
    after = {k: list(v) for k, v in dag.after.items()}
    for a, b in itertools.pairwise(chain):
        if a not in dag.upstreams(b):
            after[b].append(a)
    # The last of the chain has a higher index, so it is never already upstream of the first.
    after[chain[0]].append(chain[-1])
    return Dag(dag.names, {k: tuple(v) for k, v in after.items()}, dag.maps, dag.queues)


def is_topological(order: list[str] | tuple[str, ...], dag: Dag) -> bool:
    pos = {name: i for i, name in enumerate(order)}
    return sorted(order) == sorted(dag.names) and all(pos[u] < pos[d] for u, d in dag.edges())
