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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from orchestrator.keys import Keys
    from orchestrator.store.engine import Attempt, Engine, Lane, new_token, token_owner
    from orchestrator.store.inputs import Observe
    from orchestrator.store.reads import RunReader
    from orchestrator.store.upkeep import Upkeep

__all__ = [
    "Attempt",
    "Engine",
    "Lane",
    "Observe",
    "RunReader",
    "RunStore",
    "Upkeep",
    "new_token",
    "token_owner",
]

#: Where each name lives: imported on first use, so a reader needs no engine (PEP 562).
_HOMES = {
    "Attempt": "engine",
    "Engine": "engine",
    "Lane": "engine",
    "Observe": "inputs",
    "new_token": "engine",
    "token_owner": "engine",
    "RunReader": "reads",
    "Upkeep": "upkeep",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'orchestrator.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"orchestrator.store.{home}"), name)
    globals()[name] = value
    return value


class RunStore:
    """The three sides of the store on one client; each is its own object."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        run_ttl: int,
        max_payload: int,
        lease_seconds: float = 10.0,
        observe: Observe | None = None,
    ) -> None:
        from orchestrator.store.engine import Engine  # noqa: PLC0415
        from orchestrator.store.inputs import Observe  # noqa: PLC0415
        from orchestrator.store.reads import RunReader  # noqa: PLC0415
        from orchestrator.store.upkeep import Upkeep  # noqa: PLC0415

        self.keys = keys
        self.engine = Engine(
            client,
            keys,
            run_ttl=run_ttl,
            max_payload=max_payload,
            lease_seconds=lease_seconds,
            observe=observe or Observe.NOTHING,
        )
        self.reads = RunReader(client, keys)
        self.scores = self.reads.scores
        self.upkeep = Upkeep(client, keys, self.engine)
