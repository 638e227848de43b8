"""A schedule's definition, and its ticks: cron in a time zone, as epoch seconds.

Cron is read by ``cronsim`` (five fields, or six with leading seconds) in the
schedule's IANA time zone (``zoneinfo``). Daylight-saving changes follow
cronsim: a local time the clocks skip (02:30 on a spring-forward night) runs
at the next valid instant (03:00); a local time that happens twice (02:30 on
a fall-back night) runs once, at its first occurrence. Ticks are whole
seconds, and each is named by its epoch second in the run's idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Overlap = Literal["skip", "queue", "allow"]

#: The most ticks a ticker looks back over: enough for any catch-up it may run.
MAX_CATCHUP = 1000


class ScheduleSpec(BaseModel):
    """What ``orch schedule add`` stores: which workflow runs when, with what input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    workflow: str = Field(description="The workflow version it starts, name:version.")
    cron: str = Field(description="Five cron fields, or six with leading seconds.")
    tz: str = Field(default="UTC", description="IANA time zone the cron fields are read in.")
    input: dict[str, Any] = Field(default_factory=dict)
    overlap: Overlap = Field(
        default="skip",
        description="When the previous run is still live at a tick: skip the tick, queue it "
        "until that run ends, or allow both to run.",
    )
    catchup: int = Field(
        default=0,
        ge=0,
        le=MAX_CATCHUP,
        description="Missed ticks (no worker up, or paused) to run late: the latest N of them.",
    )

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Paris") from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from cronsim import CronSim, CronSimError  # noqa: PLC0415 - only schedules need it

        fields = value.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"{value!r} is not cron: five fields (six with leading seconds)")
        try:
            CronSim(" ".join(fields), datetime.now(UTC))
        except CronSimError as exc:
            raise ValueError(f"{value!r} is not cron: {exc}") from None
        return " ".join(fields)

    @cached_property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.tz)

    def _walk(self, start: float, *, reverse: bool = False) -> Iterator[float]:
        from cronsim import CronSim  # noqa: PLC0415

        moment = datetime.fromtimestamp(start, self.zone)
        last: float | None = None
        for when in CronSim(self.cron, moment, reverse=reverse):
            at = when.timestamp()
            if last is not None and (at <= last if not reverse else at >= last):
                continue  # never the same instant twice, whatever the clocks did
            last = at
            yield at

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment``."""
        return next(t for t in self._walk(moment) if t > moment)

    def latest(self, since: float, until: float, count: int) -> list[float]:
        """Up to ``count`` of the latest ticks in [since, until], oldest first."""
        found: list[float] = []
        if count <= 0 or until < since:
            return found
        for at in self._walk(until + 1, reverse=True):
            if at > until:
                continue
            if at < since or len(found) == count:
                break
            found.append(at)
        return found[::-1]
