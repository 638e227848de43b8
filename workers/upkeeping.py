"""The background work of a worker's main process, one tick every 0.2 s.

Every tick: record the attempts of pool children that died (``deaths``) and
move due retries onto their queues. Every second: check that Redis still holds
the data this worker knew (``orchestrator.epoch``), beat the worker's presence,
record attempts whose lease ran out, time out waits, cancel runs past their
deadline and fire the schedules' due ticks. Every ten seconds: roll
the scorecard up. Every third of ``ORCH_REDISPATCH_AFTER`` (1 to 10 s): send
again the messages of queued work that lost them (``Upkeep.reconcile``).
Redis restarting must not end it: a failed tick is logged and the next one
tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestrator.epoch import EpochWatch
from workers.deaths import ChildWatch
from workers.names import WorkerBeat
from workers.recovery import recover_lost, report_deadlines, report_expired_waits
from workers.runtime import StepRuntime

if TYPE_CHECKING:
    from orchestrator.schedules import Schedules

log = logging.getLogger("orchestrator.worker")

TICK = 0.2


class UpkeepLoop:
    def __init__(
        self,
        runtime: StepRuntime,
        hostname: str,
        queues: str,
        concurrency: int,
        pool: Any,
        *,
        redispatch_after: float,
        schedules: Callable[[], Schedules],
    ) -> None:
        self.runtime = runtime
        #: The schedules' ticker (orchestrator/schedules/ticker.py), made on the first
        #: tick that needs it, so a failure to make it is retried like any other.
        self.make_schedules = schedules
        self.schedules: Schedules | None = None
        self.redispatch_after = redispatch_after
        #: Ticks between two reconciler passes: a third of the bound, 1 to 10 s.
        self.reconcile_every = int(min(10.0, max(1.0, redispatch_after / 3)) / TICK)
        self.upkeep = runtime.store.upkeep
        self.hostname = hostname
        self.queues = queues
        self.concurrency = concurrency
        self.beats = WorkerBeat(hostname)
        self.children = ChildWatch(pool)
        store = runtime.store
        self.epochs = EpochWatch(store.engine.redis, store.keys, who=hostname)

    def run(self, stop: threading.Event) -> None:
        ticks = 0
        while not stop.wait(TICK):
            try:
                self.tick(ticks)
            except Exception:  # Redis restarting: keep trying, never die
                log.warning("worker upkeep could not reach Redis", exc_info=True)
                stop.wait(1.0)
            ticks += 1

    def tick(self, ticks: int) -> None:
        upkeep, runtime = self.upkeep, self.runtime
        if self.children.release(upkeep):  # a pool child died: record its attempts now
            recover_lost(runtime, self.children.died)
        if ticks % 5 == 0:
            self.check_epoch()
            presence = self.beats.presence(self.queues)
            queues = self.queues.split(",")
            self.beats.seen(upkeep.beat(self.hostname, queues, self.concurrency, presence))
            recover_lost(runtime, self.children.died)
            report_expired_waits(runtime, upkeep.expire_waits())
            report_deadlines(runtime, upkeep.expire_deadlines())
            self.schedules = self.schedules or self.make_schedules()
            self.schedules.tick()
        if ticks % 50 == 0:
            upkeep.rollup()
        if ticks % self.reconcile_every == 0:
            self.reconcile()
        upkeep.promote_due()

    def check_epoch(self) -> None:
        """Say once, loudly, that Redis lost its data (its epoch changed)."""
        if self.epochs.known is None:
            self.epochs.epoch()
            return
        loss = self.epochs.check()
        if loss is not None:
            log.error("%s", loss.describe())
            self.runtime.forget_workflows()

    def reconcile(self) -> None:
        for lost in self.upkeep.reconcile(self.redispatch_after):
            what = f"step {lost.step}" + ("" if lost.index is None else f"[{lost.index}]")
            log.warning("run %s %s: no message, no attempt and no retry for %gs: sent again",
                        lost.run_id, what, self.redispatch_after)  # fmt: skip
