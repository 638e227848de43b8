"""The run store: engine writes, reads and upkeep, over one Redis client.

- ``engine``: every change of run state, one atomic Lua script each;
- ``reads``: status documents, events, listings, counters;
- ``upkeep``: leases, sweeps, delayed retries, wait timeouts, worker beats, rollups;
- ``scores``: the scorecard's minute and hour buckets.

The scripts are assembled from ``orchestrator/scripts`` (``scripts``), called
with typed arguments (``inputs``) and answer typed outcomes (``outcomes``),
parsed in one place (``replies``). No module outside this package reads or
writes run state in Redis.
"""

from __future__ import annotations

import redis

from orchestrator.keys import Keys
from orchestrator.store.engine import Attempt, Engine, Lane, new_run_id, new_token
from orchestrator.store.reads import RunReader
from orchestrator.store.upkeep import Upkeep

__all__ = [
    "Attempt",
    "Engine",
    "Lane",
    "RunReader",
    "RunStore",
    "Upkeep",
    "new_run_id",
    "new_token",
]


class RunStore:
    """The three sides of the store on one client; each is its own object."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        run_ttl: int,
        max_payload: int,
        lease_seconds: float = 30.0,
        observe: bool = False,
    ) -> None:
        self.keys = keys
        self.engine = Engine(
            client,
            keys,
            run_ttl=run_ttl,
            max_payload=max_payload,
            lease_seconds=lease_seconds,
            observe=observe,
        )
        self.reads = RunReader(client, keys)
        self.scores = self.reads.scores
        self.upkeep = Upkeep(client, keys, self.engine)
