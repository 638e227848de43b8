"""What waits, and where: the document behind `orch queues` and the queue metrics.

Reads only. Per queue and priority level: the messages in the kombu list
(workers take them next) and, per fairness key, the messages held back for
fairness (fair.lua); the age of the oldest of each, from the time its
message was made (its delivery tag). Per workflow and fairness key: the
runs accepted and not started yet (the backlog admission control limits),
the runs held by per-key concurrency limits, and the submits refused so far.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from orchestrator.clock import redis_now
from orchestrator.messages import priority_list
from orchestrator.store.wire import text

if TYPE_CHECKING:
    from orchestrator.store.reads import RunReader


def queue_document(reads: RunReader, default_queue: str) -> dict[str, Any]:
    """``{"queues", "backlogs", "concurrency", "refused"}``; empty levels left out."""
    now = redis_now(reads.redis)
    queues = sorted(reads.queues() | {default_queue})
    return {
        "queues": [row for q in queues for row in _levels(reads, q, now)],
        "backlogs": _backlogs(reads, now),
        "concurrency": _concurrency(reads),
        "refused": {
            text(k): int(v)
            for k, v in cast(dict[bytes, bytes], reads.redis.hgetall(reads.keys.refused)).items()
        },
    }


def _levels(reads: RunReader, queue: str, now: float) -> list[dict[str, Any]]:
    rows = []
    for p in range(9, -1, -1):
        name = priority_list(queue, p)
        depth = reads.redis.llen(name)
        if depth:
            # Workers pop from the right; a newcomer's first message may have gone ahead
            # of the one before it (fair.lua's jump), so the oldest is one of the last two.
            ages = [_age(raw, now) for raw in reads.redis.lrange(name, -2, -1)]
            oldest = max((a for a in ages if a is not None), default=None)
            rows.append(_row(queue, p, None, depth, oldest))
        held = cast(list[bytes], reads.redis.zrange(reads.keys.fair_keys(name), 0, -1))
        for key in held:
            held_list = reads.keys.fair_held(name, text(key))
            depth = reads.redis.llen(held_list)
            if depth:  # a key whose first message jumped the list may hold nothing yet
                oldest = _age(reads.redis.lindex(held_list, 0), now)
                rows.append(_row(queue, p, text(key), depth, oldest, held=True))
    return rows


def _row(
    queue: str, p: int, key: str | None, depth: int, age: float | None, *, held: bool = False
) -> dict[str, Any]:
    return {
        "queue": queue,
        "priority": p,
        "fairness_key": key,
        "held": held,
        "depth": depth,
        "oldest_age": age,
    }


def _age(raw: Any, now: float) -> float | None:
    """Seconds since a message was made: its delivery tag is ``run.seconds.micros.n``."""
    if raw is None:
        return None
    try:
        tag = str(json.loads(raw)["properties"]["delivery_tag"]).split(".")
        return round(max(0.0, now - float(f"{tag[1]}.{tag[2]}")), 3)
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _backlogs(reads: RunReader, now: float) -> list[dict[str, Any]]:
    """Per workflow, and per fairness key of it, the runs accepted and not started.

    The workflows are those with a run in the last 31 days (the scorecard's
    active set), their keys those submit noted (K.backlog_keys): never a scan
    of the keyspace, whose size is the runs'.
    """
    names = sorted({ref.rpartition(":")[0] for ref in reads.scores.active()})
    rows = []
    for workflow in names:
        keys = cast(set[bytes], reads.redis.smembers(reads.keys.backlog_keys(workflow)))
        backlogs: list[tuple[str, str | None]] = [(reads.keys.backlog(workflow), None)]
        backlogs += [(reads.keys.key_backlog(workflow, text(k)), text(k)) for k in sorted(keys)]
        for backlog, key in backlogs:
            row = _backlog(reads, backlog, now)
            if row is not None:
                rows.append({"workflow": workflow, "fairness_key": key, **row})
    return rows


def _backlog(reads: RunReader, backlog: str, now: float) -> dict[str, Any] | None:
    waiting = reads.redis.zcard(backlog)
    if not waiting:
        return None
    oldest = cast(list[tuple[bytes, float]], reads.redis.zrange(backlog, 0, 0, withscores=True))
    age = round(max(0.0, now - oldest[0][1]), 3) if oldest else None
    return {"waiting": waiting, "oldest_age": age}


def _concurrency(reads: RunReader) -> list[dict[str, Any]]:
    """Per workflow version and concurrency key: runs holding a slot, runs waiting for one."""
    rows = []
    for member in sorted(text(m) for m in reads.redis.smembers(reads.keys.concurrency_keys)):
        ref, _, key = member.partition("|")
        running = reads.redis.zcard(reads.keys.run_slots(ref, key))
        waiting = reads.redis.llen(reads.keys.run_waiting(ref, key))
        if running or waiting:
            rows.append({"workflow": ref, "key": key, "running": running, "waiting": waiting})
    return rows
