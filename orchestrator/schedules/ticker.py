"""The ticker: every worker fires due schedules, and each tick starts at most one run.

Any number of workers call ``tick`` about once a second (``orch dev`` runs
workers too). Exactly one run per tick holds however many race, because the
run is submitted under the idempotency key ``schedule:{name}:{tick}``: a
second submit of the same tick finds the first run. The schedule then moves
on only if nobody moved it since this ticker read it (schedule.lua
``advance``), so one view of what happened wins.

Which due ticks fire: the latest due tick is on time, unless it passed while
the schedule was paused; every other due tick was missed (no worker was up,
or the schedule was paused), and the latest ``catchup`` missed ones fire late,
oldest first. ``overlap`` decides a tick whose previous run is still live:
``skip`` it, ``queue`` it (the schedule waits at that tick until the run
ends), or ``allow`` both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import NotFoundError, OrchestratorError
from orchestrator.schedules.model import ScheduleSpec

if TYPE_CHECKING:
    from orchestrator.schedules.store import Schedules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fired:
    """What one ticker did for one schedule at one call."""

    schedule: str
    runs: dict[float, str] = field(default_factory=dict)  # tick -> run id
    skipped: tuple[float, ...] = ()
    held: float | None = None
    won: bool = True  # False: another ticker moved the schedule on first
    error: str | None = None


@dataclass
class _Pass:
    """One schedule's handling at one tick call: what it fired, skipped or held."""

    spec: ScheduleSpec
    last_run: str
    runs: dict[float, str] = field(default_factory=dict)
    skipped: list[float] = field(default_factory=list)
    held: float | None = None
    error: str | None = None


def key_of(name: str, tick: float) -> str:
    """The idempotency key of a tick's run: the schedule and the tick's epoch second."""
    return f"schedule:{name}:{int(tick)}"


def chosen(due: list[float], *, resumed_at: float, held: float | None, catchup: int) -> list[float]:
    """The due ticks to fire, oldest first (``due`` is oldest first and may be cut short)."""
    if not due:
        return []
    on_time = [due[-1]] if due[-1] >= resumed_at else []
    missed = due[:-1] if on_time else list(due)
    forced = [held] if held is not None and missed and missed[0] == held else []
    rest = missed[len(forced) :]
    late = rest[-catchup:] if catchup else []
    return forced + late + on_time


class Ticker:
    def __init__(self, schedules: Schedules) -> None:
        self.schedules = schedules
        self.client = schedules.client

    def tick(self, now: float) -> list[Fired]:
        keys = self.client.keys
        due = self.client.redis.zrangebyscore(keys.schedules, "-inf", now)
        out = []
        for raw in due:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                out.append(self.fire(name, now))
            except NotFoundError:
                continue  # removed meanwhile
        return out

    def fire(self, name: str, now: float) -> Fired:
        fields = self.schedules.raw(name)
        if fields.get("paused") == "1":
            return Fired(name, won=False)
        spec = ScheduleSpec.model_validate_json(fields["spec"])
        expected = fields["next"]
        start = float(expected)
        held = float(fields["held"]) if fields.get("held") else None
        due = spec.latest(start, now, spec.catchup + 2)
        if held is not None and (not due or due[0] != held) and held <= now:
            due = [held, *due]
        ticks = chosen(
            due,
            resumed_at=float(fields.get("resumed_at") or 0),
            held=held,
            catchup=spec.catchup,
        )
        done = _Pass(spec, fields.get("last_run", ""))
        for tick in ticks:
            if not self._start(name, tick, done):
                break
        following = done.held if done.held is not None else spec.next_after(now)
        won = self._advance(name, expected, following, done)
        return Fired(name, done.runs, tuple(done.skipped), done.held, won, done.error)

    def _start(self, name: str, tick: float, done: _Pass) -> bool:
        """Start the run of one tick, or skip or hold it; False stops this pass."""
        if done.spec.overlap != "allow" and self._live(done.last_run):
            if done.spec.overlap == "skip":
                done.skipped.append(tick)
                return True
            done.held = tick
            return False
        try:
            run = self.client.submit(done.spec.workflow, done.spec.input, key=key_of(name, tick))
        except OrchestratorError as exc:
            done.error = f"tick {int(tick)}: {exc}"
            log.warning("schedule %s could not start a run: %s", name, exc)
            return False
        done.runs[tick] = run.id
        done.last_run = run.id
        return True

    def _live(self, run_id: str) -> bool:
        if not run_id:
            return False
        from orchestrator.runs import TERMINAL  # noqa: PLC0415

        try:
            state = self.client.reads.run_fields(run_id).get("state")
        except NotFoundError:
            return False
        return state not in TERMINAL

    def _advance(self, name: str, expected: str, following: float, done: _Pass) -> bool:
        from orchestrator.store import inputs as i  # noqa: PLC0415
        from orchestrator.store import outcomes as o  # noqa: PLC0415

        last = max(done.runs, default=None)
        args = i.ScheduleArgs(
            op="advance",
            name=name,
            at=f"{following:.6f}",
            expected=expected,
            tick=f"{last:.6f}" if last is not None else "",
            run=done.runs[last] if last is not None else "",
            held=f"{done.held:.6f}" if done.held is not None else "",
            skipped=len(done.skipped),
            error=done.error or "",
        )
        return self.schedules.change(args) is o.ScheduleResult.OK
