"""Reading the scorecard's buckets: minutes, hours, and the minutes not yet rolled.

The engine counts into one hash per version and minute; rollup.lua adds each
closed minute to its hour once and marks it (``K.score_rolled``). So the
counts of an hour are its hour hash plus those of its minutes after the mark,
and no count is ever read twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from orchestrator.clock import redis_now
from orchestrator.keys import Keys
from orchestrator.store.wire import text

if TYPE_CHECKING:
    from orchestrator.leanredis import Conn

#: How long minute and hour buckets are kept (seconds); rollup.lua gets them too.
KEEP_MINUTES = 6 * 3600
KEEP_HOURS = 31 * 24 * 3600

Counts = dict[str, float]


def add(into: Counts, counts: Counts) -> Counts:
    for field, value in counts.items():
        into[field] = into.get(field, 0.0) + value
    return into


class ScoreReader:
    def __init__(self, client: Conn, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def active(self, since: float | None = None) -> list[str]:
        """Versions (``name:version``) with a run submitted or ended in the last 31 days,
        or since ``since`` (epoch seconds): each is scored by its latest such moment."""
        key = self.keys.score_active
        if since is None:
            members = cast(list[bytes], self.redis.zrange(key, 0, -1))
        else:
            members = cast(list[bytes], self.redis.zrangebyscore(key, since, "+inf"))
        return [text(m) for m in members]

    def rolled(self, ref: str) -> int | None:
        """The last minute of ``ref`` already added to its hour (None: none yet)."""
        raw = self.redis.get(self.keys.score_rolled(ref))
        return int(raw) if raw is not None else None

    def minutes(self, ref: str, minutes: Iterable[int]) -> dict[int, Counts]:
        """The counts of each minute (epoch seconds // 60) that has any."""
        wanted = list(minutes)
        with self.redis.pipeline(transaction=False) as pipe:
            for m in wanted:
                pipe.hgetall(self.keys.score_minute(ref, m))
            found = pipe.execute()
        return {m: _counts(raw) for m, raw in zip(wanted, found, strict=True) if raw}

    def hours(self, ref: str, hours: Iterable[int]) -> dict[int, Counts]:
        """The counts of each hour (epoch seconds // 3600): rolled minutes and the rest."""
        wanted = list(hours)
        rolled = self.rolled(ref)
        with self.redis.pipeline(transaction=False) as pipe:
            for h in wanted:
                pipe.hgetall(self.keys.score_hour(ref, h))
            found = pipe.execute()
        out = {h: _counts(raw) for h, raw in zip(wanted, found, strict=True) if raw}
        now_minute = int(self.now() // 60)
        first = now_minute - KEEP_MINUTES // 60 if rolled is None else rolled + 1
        hours_wanted = set(wanted)
        pending = [m for m in range(first, now_minute + 1) if m // 60 in hours_wanted]
        for m, counts in self.minutes(ref, pending).items():
            add(out.setdefault(m // 60, {}), counts)
        return out

    def now(self) -> float:
        return redis_now(self.redis)


def _counts(raw: dict[bytes, bytes]) -> Counts:
    return {k.decode(): float(v) for k, v in raw.items()}
