"""Keeping the leases of running attempts alive, one thread per worker process.

A lease says "this attempt is still being worked on". It is renewed every
third of its length while the step runs; if the process dies (SIGKILL, OOM,
hard time limit) renewals stop, the lease runs out, and the sweeper in any
worker's main process retries the step. One thread serves every attempt the
process runs, so a step costs a dictionary entry, not a thread start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from orchestrator.store import Attempt, Upkeep

log = logging.getLogger("orchestrator.leases")


class LeaseKeeper:
    def __init__(self, upkeep: Upkeep) -> None:
        self.upkeep = upkeep
        self._active: dict[str, Attempt] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def held(self, attempt: Attempt) -> Iterator[None]:
        """Renew ``attempt``'s lease for as long as the block runs."""
        with self._lock:
            self._active[attempt.token] = attempt
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="orch-lease", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(attempt.token, None)

    def _loop(self) -> None:
        interval = self.upkeep.lease_seconds / 3
        while True:
            threading.Event().wait(interval)
            with self._lock:
                attempts = list(self._active.values())
            for attempt in attempts:
                try:
                    self.upkeep.heartbeat(attempt)
                except redis.RedisError:
                    log.warning("could not renew the lease of %s", attempt.lease_member())
