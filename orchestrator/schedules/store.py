"""Schedules in Redis: add, list, pause, resume and remove, atomically (schedule.lua).

Every change is one call of schedule.lua, which keeps a schedule's hash and its
place in the tickers' set together. Times come from the ``clock`` (Redis
``TIME`` by default, the engine's one clock; a test may pass its own).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from orchestrator.errors import NotFoundError, OrchestratorError, SpecError
from orchestrator.schedules.model import ScheduleSpec
from orchestrator.status import rfc3339

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.schedules.ticker import Fired
    from orchestrator.store import outcomes as o
    from orchestrator.store.inputs import ScheduleArgs

Clock = Callable[[], float]


def _stamp(moment: float) -> str:
    return f"{moment:.6f}"


class Schedules:
    """``client.schedules``: the schedules stored in Redis, and the ticker that fires them."""

    def __init__(self, client: Client, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock or self._redis_time

    def _redis_time(self) -> float:
        from orchestrator.clock import redis_now  # noqa: PLC0415

        return redis_now(self.client.redis)

    def change(self, args: ScheduleArgs) -> o.ScheduleResult:
        from orchestrator.store import replies  # noqa: PLC0415

        return replies.schedule(self.client.store.engine.scripts.plain(args))

    def add(
        self,
        name: str,
        workflow: Any,
        cron: str,
        *,
        tz: str = "UTC",
        input: dict[str, Any] | None = None,
        overlap: str = "skip",
        catchup: int = 0,
    ) -> dict[str, Any]:
        """Store a schedule of ``workflow`` (a Workflow, a YAML path or name[:version]).

        The workflow version is registered now and the schedule keeps it: a
        worker fires it with no file at hand. Refuses a name already taken.
        """
        from pydantic import ValidationError  # noqa: PLC0415

        from orchestrator.loader import describe_validation_error  # noqa: PLC0415
        from orchestrator.store import inputs as i  # noqa: PLC0415
        from orchestrator.store import outcomes as o  # noqa: PLC0415

        wf = self.client.resolve(workflow)
        value = {"name": name, "cron": cron, "tz": tz, "input": input or {}, "overlap": overlap}
        try:
            spec = ScheduleSpec.model_validate({**value, "catchup": catchup, "workflow": wf.ref})
        except ValidationError as exc:
            raise SpecError(describe_validation_error(exc), where=f"schedule {name!r}") from None
        self.client.checks.run_input(wf, spec.input)
        self.client.register(wf)
        first = spec.next_after(self.clock())
        args = i.ScheduleArgs(op="add", name=name, at=_stamp(first), spec=spec.model_dump_json())
        if self.change(args) is o.ScheduleResult.EXISTS:
            raise OrchestratorError(f"schedule {name!r} exists; remove it first")
        return self.get(name)

    def _op(self, op: str, name: str) -> bool:
        from orchestrator.store import inputs as i  # noqa: PLC0415
        from orchestrator.store import outcomes as o  # noqa: PLC0415

        result = self.change(i.ScheduleArgs(op=op, name=name, at=_stamp(self.clock())))
        if result is o.ScheduleResult.MISSING:
            raise NotFoundError(f"schedule {name!r} not found")
        return result is o.ScheduleResult.OK

    def pause(self, name: str) -> bool:
        """Stop firing it; ticks that pass while paused are missed (see ``catchup``).
        False when it was paused already."""
        return self._op("pause", name)

    def resume(self, name: str) -> bool:
        """Fire it again; False when it was not paused."""
        return self._op("resume", name)

    def remove(self, name: str) -> None:
        self._op("remove", name)

    def raw(self, name: str) -> dict[str, str]:
        found = cast(dict[bytes, bytes], self.client.redis.hgetall(self.client.keys.schedule(name)))
        if not found:
            raise NotFoundError(f"schedule {name!r} not found")
        return {k.decode(): v.decode() for k, v in found.items()}

    def get(self, name: str) -> dict[str, Any]:
        """The schedule's document: its definition and what its ticker did."""
        fields = self.raw(name)
        spec = ScheduleSpec.model_validate_json(fields["spec"])
        return {
            **spec.model_dump(mode="json"),
            "paused": fields.get("paused") == "1",
            "next_at": rfc3339(fields.get("next")),
            "last_tick": rfc3339(fields.get("last_tick")),
            "last_run": fields.get("last_run") or None,
            "skipped": int(fields.get("skipped") or 0),
            "held": rfc3339(fields.get("held")),
            "error": fields.get("error") or None,
        }

    def list(self) -> list[dict[str, Any]]:
        """Every schedule, by name."""
        names = cast(list[bytes], self.client.redis.zrange(self.client.keys.schedules, 0, -1))
        out = []
        for name in sorted(n.decode() for n in names):
            try:
                out.append(self.get(name))
            except NotFoundError:
                continue  # removed meanwhile
        return out

    def tick(self, now: float | None = None) -> builtins.list[Fired]:
        """Fire every schedule due at ``now`` (default: the clock); see ticker.py."""
        from orchestrator.schedules.ticker import Ticker  # noqa: PLC0415

        return Ticker(self).tick(self.clock() if now is None else now)
