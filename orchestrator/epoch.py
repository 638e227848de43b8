"""The data's epoch: noticing that Redis lost everything, and saying so.

A Redis restarted without persistence (or flushed, or failed over to an
empty replica) comes back empty. Without a mark, that looks like a quiet
system: every run "not found", nothing stuck. So the first process to use a
Redis writes an epoch (``K.epoch``: a short random id and Redis's time) and
every long-lived process remembers the one it saw. When the key is gone or
holds another id, the data it knew was lost: the process that notices says
so, loudly and once, and records the lost epoch (``K.lost_epochs``) for the
processes that never saw it.

New run ids start with the epoch's id (``3fa9c1-…``), so ``orch status`` of
a run from a lost epoch can say "lost with the Redis data" from the id
alone, even in a process that was not running when the data went.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from orchestrator.errors import NotFoundError, RunLostError
from orchestrator.keys import Keys

if TYPE_CHECKING:
    import redis

    from orchestrator.leanredis import Conn

_RUN_ID = re.compile(r"^([0-9a-f]{6})-[0-9a-f]{16}$")


class DataLostWarning(UserWarning):
    """Redis lost the data this process knew (its epoch is gone)."""


@dataclass(frozen=True)
class Epoch:
    id: str
    since: float  # Redis time it began


@dataclass(frozen=True)
class Loss:
    """The data of epoch ``old`` is gone; this Redis now holds epoch ``new``."""

    old: Epoch
    new: Epoch

    def describe(self) -> str:
        return (
            f"Redis lost its data: epoch {self.old.id} is gone (a restart without persistence, "
            f"a flush or a failover to an empty replica); every run, workflow and plan of it "
            f"is lost; the data starts again as epoch {self.new.id}"
        )


def epoch_of(run_id: str) -> str | None:
    """The epoch a run id was made in (None for ids made before epochs)."""
    match = _RUN_ID.match(run_id)
    return match.group(1) if match else None


def new_run_id(epoch: str) -> str:
    return f"{epoch}-{secrets.token_hex(8)}"


def _parse(raw: bytes | str | None) -> Epoch | None:
    if raw is None:
        return None
    doc = json.loads(raw)
    return Epoch(str(doc["id"]), float(doc["since"]))


def current(client: Conn, keys: Keys) -> Epoch:
    """This Redis's epoch, begun now (by whoever comes first) if it has none."""
    found = _parse(cast(bytes | None, client.get(keys.epoch)))
    if found is not None:
        return found
    seconds, micros = client.time()
    fresh = Epoch(secrets.token_hex(3), seconds + micros / 1e6)
    client.set(keys.epoch, json.dumps({"id": fresh.id, "since": fresh.since}), nx=True)
    return _parse(cast(bytes | None, client.get(keys.epoch))) or fresh


def lost(client: Conn, keys: Keys) -> dict[str, dict[str, object]]:
    """Epochs whose loss some process noticed: id -> {noticed, by, now}."""
    raw = cast(dict[bytes, bytes], client.hgetall(keys.lost_epochs))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


class EpochWatch:
    """Remembers the epoch a process works in, and notices when it changes."""

    def __init__(self, client: redis.Redis, keys: Keys, who: str) -> None:
        self.client = client
        self.keys = keys
        self.who = who
        self.known: Epoch | None = None

    def epoch(self) -> Epoch:
        """The epoch this process works in (read once, then remembered)."""
        if self.known is None:
            self.known = current(self.client, self.keys)
        return self.known

    def check(self) -> Loss | None:
        """A loss since the last check (recorded for everyone), or None."""
        now = current(self.client, self.keys)
        old, self.known = self.known, now
        if old is None or old.id == now.id:
            return None
        seconds, _ = self.client.time()
        note = {"noticed": seconds, "by": self.who, "now": now.id}
        self.client.hsetnx(self.keys.lost_epochs, old.id, json.dumps(note))
        return Loss(old, now)


def missing_run(client: Conn, keys: Keys, run_id: str) -> NotFoundError:
    """What to raise for a run id this Redis does not hold: lost with the data, or not found."""
    made_in = epoch_of(run_id)
    if made_in is not None:
        now = current(client, keys)
        if made_in != now.id:
            return RunLostError(
                f"run {run_id!r} was lost with the Redis data (epoch {made_in}); "
                f"this Redis holds epoch {now.id}"
            )
    return NotFoundError(f"run {run_id!r} not found (unknown, or expired after ORCH_RUN_TTL)")
