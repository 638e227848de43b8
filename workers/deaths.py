"""Noticing at once that a pool child died, in the worker's main process.

A child killed mid-step (SIGKILL, the kernel's OOM killer, a hard time limit)
records nothing; without help its attempt waits a whole lease before a sweep
finds it. The main process sees the child exit (a zombie in ``/proc``, or gone
from its pool's process list) within one upkeep tick, so it makes that
child's leases due now (their tokens name the process that made them, see
``orchestrator.store.token_owner``) and the next sweep records them lost. A
child that ended cleanly (``max_tasks_per_child``) holds no lease, so finding
none costs one scan of the lease set.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestrator.store import Upkeep, token_owner

log = logging.getLogger("orchestrator.worker")


class ChildWatch:
    """Compares the pool's child pids from one tick to the next."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._seen: set[int] = set()
        self._seen = self._pids()
        self._reported: set[int] = set()
        #: Token owner of each child found dead with leases -> how it is reported.
        self.died: dict[str, str] = {}

    def _pids(self) -> set[int]:
        """The pool's live children (prefork); none for a pool without processes."""
        try:
            info = self.pool.info if self.pool is not None else {}
        except Exception:  # the pool is starting or stopping: nothing to compare yet
            return set(self._seen)
        return {int(p) for p in (info.get("processes") or []) if p}

    def gone(self) -> list[int]:
        """Children that died since the last tick: gone from the pool's list, or still in it
        but dead (a zombie the pool has not reaped yet, which can take it a second or two)."""
        now = self._pids()
        dead = (self._seen - now) | {pid for pid in now if _is_dead(pid)}
        fresh = sorted(dead - self._reported)
        self._reported = (self._reported | dead) & now  # a pid leaves once the pool drops it
        self._seen = now
        return fresh

    def release(self, upkeep: Upkeep) -> int:
        """Make the leases of every child that died since the last tick due at once."""
        released = 0
        for pid in self.gone():
            owner = token_owner(pid)
            count = upkeep.expire_leases_of(owner)
            if count:
                if len(self.died) >= 1000:  # only the recent deaths matter to the next sweep
                    self.died.pop(next(iter(self.died)))
                self.died[owner] = f"its worker process (pid {pid}) died"
                log.warning("pool process %d died holding %d attempt(s): recording them lost",
                            pid, count)  # fmt: skip
                released += count
        return released


def _is_dead(pid: int) -> bool:
    """Whether ``pid`` exited: a zombie, or no process at all (Linux ``/proc``; elsewhere the
    pool's own list says it, a little later)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True
    except (OSError, IndexError):
        return False
