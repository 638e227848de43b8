"""Building a scorecard from the buckets a store reader returns.

Windows are counted back from Redis's clock, in whole buckets: ``--window 1h
--by minute`` is the 60 minutes up to and including the current one, and the
previous window is the 60 before them. Minutes are kept 6 hours, hours 31 days.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from orchestrator.errors import SpecError
from orchestrator.scorecard.figures import Shape, figures, sum_counts
from orchestrator.scorecard.model import Figures, Point, Scorecard, VersionScore
from orchestrator.store.scores import KEEP_MINUTES, Counts, ScoreReader

BUCKET = {"minute": 60, "hour": 3600, "day": 86400}
_WINDOW = re.compile(r"^(\d+)([mhd])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def window_seconds(window: str) -> int:
    match = _WINDOW.match(window.strip())
    if not match or int(match.group(1)) == 0:
        raise SpecError("expected a duration such as 1h, 24h, 7d or 30d", where="--window")
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds > 30 * 86400:
        raise SpecError("at most 30d: hours are kept 31 days", where="--window")
    return seconds


def default_by(seconds: int) -> str:
    return "minute" if seconds <= 6 * 3600 else "hour" if seconds <= 2 * 86400 else "day"


def check_by(by: str, seconds: int) -> None:
    if by not in BUCKET:
        raise SpecError(f"{by!r} is not one of minute, hour, day", where="--by")
    if by == "minute" and seconds > KEEP_MINUTES:
        raise SpecError("minutes are kept 6 hours: use --by hour or day", where="--by")
    if BUCKET[by] > seconds:
        raise SpecError(f"a {by} does not fit in the window", where="--by")


class Builder:
    def __init__(self, scores: ScoreReader, shape_of: Callable[[str], Shape]) -> None:
        self.scores = scores
        self.shape_of = shape_of

    def build(self, refs: list[str], window: str, by: str | None) -> Scorecard:
        seconds = window_seconds(window)
        by = by or default_by(seconds)
        check_by(by, seconds)
        size = BUCKET[by]
        now = self.scores.now()
        last = int(now // size)
        n = seconds // size
        starts = list(range(last - 2 * n + 1, last + 1))
        versions = [self._version(ref, by, size, starts, n) for ref in refs]
        return Scorecard(
            window=window,
            by=by,
            start=_at((last - n + 1) * size),
            end=_at(now),
            versions=versions,
        )

    def _version(self, ref: str, by: str, size: int, starts: list[int], n: int) -> VersionScore:
        shape = self.shape_of(ref)
        buckets = self._buckets(ref, by, starts)
        per = [buckets.get(b, {}) for b in starts]
        name, _, version = ref.rpartition(":")
        return VersionScore(
            workflow=name,
            version=int(version),
            current=figures(sum_counts(per[n:]), shape),
            previous=figures(sum_counts(per[:n]), shape),
            trend=[
                _point(b * size, figures(c, shape))
                for b, c in zip(starts[n:], per[n:], strict=True)
            ],
        )

    def _buckets(self, ref: str, by: str, starts: list[int]) -> dict[int, Counts]:
        if by == "minute":
            return self.scores.minutes(ref, starts)
        if by == "hour":
            return self.scores.hours(ref, starts)
        hours = self.scores.hours(ref, range(starts[0] * 24, starts[-1] * 24 + 24))
        days: dict[int, Counts] = {}
        for hour, counts in hours.items():
            days[hour // 24] = sum_counts([days.get(hour // 24, {}), counts])
        return days


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _point(start: float, f: Figures) -> Point:
    p95s = [q.p95 for q in f.queue_delay if q.p95 is not None]
    return Point(
        start=_at(start),
        runs=f.runs,
        success_rate=f.success_rate,
        retry_burden=f.retry_burden,
        queue_delay_p95=max(p95s) if p95s else None,
        handoff_accuracy=f.handoff_accuracy,
        compensation_rate=f.compensation_rate,
        coverage=f.coverage,
    )
