"""How a scenario is run: sizes, alternating A/B rounds, and the cost of a timed batch.

Rounds alternate which side goes first (orch, plain, then plain, orch, ...)
so that a slow drift of the machine (other processes, Redis growing) does not
always land on the same side. Each side starts from empty queues and idle
workers, and warms up untimed first, so imports, forks and workflow
registration are never timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.harness import Harness
from bench.probes import stats_delta
from bench.workloads import WAIT, Batch, check_orch
from orchestrator import Workflow
from orchestrator.messages import priority_lists

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does; the full sizes are the ones the targets are for."""

    a_runs: int = 200
    a_idle: int = 30
    b_runs: int = 50
    b_idle: int = 5
    c_reps: int = 3
    d_elems: int = 1000
    e_submits: int = 2000
    h_runs: int = 200
    monitor_runs: int = 3


QUICK = Sizes(
    a_runs=50, a_idle=10, b_runs=10, b_idle=2, c_reps=1, d_elems=300, e_submits=300, h_runs=50
)


@dataclass
class Ctx:
    """What every scenario gets: the harness, the sizes, and results shared between them."""

    h: Harness
    rounds: int
    sizes: Sizes
    concurrency: int = 2
    log: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)

    def default_workers(self) -> None:
        self.h.set_workers(processes=1, concurrency=self.concurrency)


@dataclass
class Sample:
    """One side's timed batch with what it cost: Redis commands and CPU by process."""

    batch: Batch
    steps: int
    cmds: dict[str, tuple[int, int]]
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.steps / self.batch.wall

    def commands_per_step(self) -> float:
        return sum(c for c, _ in self.cmds.values()) / self.steps


def settle(h: Harness, queues: tuple[str, ...] = ("orch", "plain")) -> None:
    """Wait for both queues to be empty and the workers idle before timing anything."""
    deadline = time.monotonic() + WAIT
    while (
        any(h.r.llen(x) for q in queues for x in priority_lists(q)) and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    time.sleep(0.3)


def ab(ctx: Ctx, orch: Callable[[], T], plain: Callable[[], U]) -> tuple[list[T], list[U]]:
    """Run both sides ``ctx.rounds`` times, alternating which goes first."""
    os_: list[T] = []
    ps: list[U] = []
    for i in range(ctx.rounds):
        first_orch = i % 2 == 0
        for side in ("orch", "plain") if first_orch else ("plain", "orch"):
            settle(ctx.h)
            if side == "orch":
                os_.append(orch())
            else:
                ps.append(plain())
    return os_, ps


def measured(h: Harness, run: Callable[[], Batch], steps: int) -> Sample:
    c0, p0 = h.commandstats(), h.cpu()
    batch = run()
    c1, p1 = h.commandstats(), h.cpu()
    return Sample(batch, steps, stats_delta(c0, c1), {k: p1[k] - p0[k] for k in p1})


def warm(h: Harness, wf: Workflow, make: Callable[[], Any], run_input: dict[str, Any]) -> None:
    """One untimed run per side: imports, forks and workflow registration happen here."""
    run = h.client.submit(wf, run_input)
    check_orch(run, run.wait(WAIT))
    make().apply_async().get(timeout=WAIT)
