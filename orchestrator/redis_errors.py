"""The Redis errors of either client, recognised without importing redis-py.

The quick commands read through ``LeanRedis`` and never import redis-py
(``leanredis``), so code on their path cannot name ``redis.ResponseError`` in
an ``except``. These functions give the classes to catch instead: the lean
client's, and redis-py's when redis-py is loaded. When it is not, nothing
could have raised its errors, so leaving them out misses nothing.
"""

from __future__ import annotations

import sys


class ResponseError(Exception):
    """Redis answered ``LeanRedis`` with an error (``-ERR ...``)."""


def response_errors() -> tuple[type[Exception], ...]:
    """Error replies (an unknown or denied command, a wrong type)."""
    redis = sys.modules.get("redis")
    return (ResponseError, redis.ResponseError) if redis is not None else (ResponseError,)


def outage_errors() -> tuple[type[Exception], ...]:
    """A connection refused, dropped or timed out (``LeanRedis`` raises
    ``RedisUnavailableError`` for these itself)."""
    redis = sys.modules.get("redis")
    return (redis.ConnectionError, redis.TimeoutError) if redis is not None else ()


def out_of_memory_errors() -> tuple[type[Exception], ...]:
    """A write refused because ``maxmemory`` is reached."""
    redis = sys.modules.get("redis")
    return (redis.exceptions.OutOfMemoryError,) if redis is not None else ()
