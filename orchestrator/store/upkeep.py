"""Upkeep: the background work every worker's main process does for everyone.

Renewing leases, finding attempts whose lease ran out, moving delayed
retries back onto their queues, timing out waits and waking sleeps,
cancelling runs past their deadline, and beating the worker's
presence and capacity. Each is safe to run from every worker at once: the
scripts hand each due item to exactly one caller.
"""

from __future__ import annotations

import redis

from orchestrator.keys import Keys
from orchestrator.messages import KOMBU_UNACKED, KOMBU_UNACKED_INDEX
from orchestrator.store import inputs as i
from orchestrator.store import outcomes as o
from orchestrator.store import replies
from orchestrator.store.engine import Attempt, Engine
from orchestrator.store.scores import KEEP_HOURS, KEEP_MINUTES
from orchestrator.store.wire import text


class Upkeep:
    def __init__(self, client: redis.Redis, keys: Keys, engine: Engine) -> None:
        self.redis = client
        self.keys = keys
        self.engine = engine

    @property
    def lease_seconds(self) -> float:
        return self.engine.lease_seconds

    def heartbeat(self, attempt: Attempt) -> bool:
        """Extend the attempt's lease; False when it has none any more (recorded, or lost)."""
        args = i.HeartbeatArgs(
            lease=self.lease_seconds,
            member=attempt.lease_member(),
            dependency=attempt.dependency,
            token=attempt.token,
        )
        return bool(self.engine.scripts.plain(args))

    def expired_leases(self, batch: int = 100) -> list[Attempt]:
        """Attempts whose lease ran out, each handed to one caller per lease period."""
        raw = self.engine.scripts.plain(i.SweepArgs(lease=self.lease_seconds, batch=batch))
        return [Attempt.from_lease_member(m) for m in replies.members(raw)]

    def expire_leases_of(self, owner: str) -> int:
        """Make the leases of the dead process ``owner`` (``token_owner``) due at once.

        The next sweep records them lost, as if they had run out: a worker's
        main process calls this when a pool child dies, instead of waiting a
        lease. An attempt recorded meanwhile has no lease left to touch (XX).
        """
        members = [
            text(m)
            for m, _ in self.redis.zscan_iter(self.keys.leases, match=f"*.{owner}", count=500)
        ]
        if not members:
            return 0
        changed = self.redis.zadd(self.keys.leases, dict.fromkeys(members, 0), xx=True, ch=True)
        return int(changed or 0)

    def reconcile(self, after: float, batch: int = 200) -> list[o.Redispatched]:
        """Send again the messages of queued work that lost them (reconcile.lua).

        Looks through every run not yet ended (``K.live``), a batch per call;
        returns what was sent again.
        """
        sent: list[o.Redispatched] = []
        ids: list[str] = []
        for run_id in self.redis.sscan_iter(self.keys.live, count=batch):
            ids.append(text(run_id))
            if len(ids) >= batch:
                sent += self._reconcile(after, ids, KOMBU_UNACKED, KOMBU_UNACKED_INDEX)
                ids = []
        if ids:
            sent += self._reconcile(after, ids, KOMBU_UNACKED, KOMBU_UNACKED_INDEX)
        return sent

    def _reconcile(
        self, after: float, ids: list[str], unacked: str, index: str
    ) -> list[o.Redispatched]:
        args = i.ReconcileArgs(after=after, unacked=unacked, unacked_index=index, runs=tuple(ids))
        return replies.redispatched(self.engine.scripts.plain(args))

    def drop_lease(self, attempt: Attempt) -> None:
        """Forget a lease whose run no longer exists (expired): nothing is left to record."""
        self.redis.zrem(self.keys.leases, attempt.lease_member())

    def promote_due(self, batch: int = 200) -> int:
        """Queue retries and admissions whose time has come; returns how many moved."""
        return int(self.engine.scripts.plain(i.PromoteArgs(batch=batch)))

    def expire_waits(self, batch: int = 100) -> list[tuple[str, str, o.Settled]]:
        """Time out waiting steps whose ``timeout`` passed with no signal."""
        members = replies.members(self.engine.scripts.plain(i.DueArgs(batch=batch)))
        out = []
        for member in members:
            run_id, step = member.split("|")
            out.append((run_id, step, self.engine.timeout(run_id, step)))
        return out

    def expire_deadlines(
        self, batch: int = 100
    ) -> list[tuple[str, o.CancelRequested | o.Final | o.Gone]]:
        """Cancel the runs whose ``deadline`` passed, each by exactly one caller."""
        members = replies.members(self.engine.scripts.plain(i.OverdueArgs(batch=batch)))
        return [(run_id, self.engine.deadline(run_id)) for run_id in members]

    def rollup(self) -> int:
        """Roll the scorecard's closed minutes into hours; returns how many were rolled."""
        args = i.RollupArgs(keep_minutes=KEEP_MINUTES, keep_hours=KEEP_HOURS)
        return int(self.engine.scripts.plain(args))

    def beat(self, hostname: str, queues: list[str], concurrency: int, presence: str) -> str | None:
        """Say, for 10 s, that this worker lives, what it consumes and with how many
        processes; returns what its presence key held before (another worker's, maybe)."""
        args = i.BeatArgs(
            hostname=hostname, concurrency=concurrency, presence=presence, queues=tuple(queues)
        )
        previous = self.engine.scripts.plain(args)
        return None if previous is None else text(previous)
