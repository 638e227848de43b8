"""The one clock stored times are compared with: Redis's own ``TIME``.

Every time the engine records (events, leases, delays) comes from ``TIME``
inside its Lua scripts. A process comparing them with its local clock is off
by its clock's error: a client 2 h fast calls a 1-second-old run "stuck for
7202 s", and one 120 s slow misses a stuck run. So comparisons ask Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.leanredis import Conn


def redis_now(client: Conn) -> float:
    """Seconds since the epoch by the Redis server's clock."""
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1_000_000
