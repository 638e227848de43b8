"""Finding Redis and connecting to it with bounded waits.

Every entry point goes through ``connect``, which says who calls:

- ``client`` (``Client``, every CLI command) and ``dev`` (``orch dev``): every
  read and write waits at most ``ORCH_CONNECT_TIMEOUT`` seconds, and a timeout
  is not retried, so "Redis is unreachable" (exit code 3) comes within that
  bound, never a hang, even from a server that accepts connections but never
  answers. A connection refused or reset (a restarted server and a stale pooled
  connection) is retried once at once.
- ``worker`` (a worker's start-up check) and ``worker-process`` (the Redis
  client of a worker process): a stall is noticed within the same timeout and
  logged at once, but the call is retried for ``stalls.WORKER_PATIENCE`` seconds
  before it fails, since a worker has work in hand and a Redis restart or
  failover usually passes.

All but ``worker-process`` also refuse a Redis that may evict keys (see
``redis_checks``); a worker's processes rely on the check made at its start.

A read-only ``Client`` (``orch status``, ``orch runs``, ``orch queues``)
connects through ``connect_reads`` instead: the same checks and the same
bounded waits as a ``client``'s, over ``LeanRedis`` where it serves the URL,
so that those commands never import redis-py (``leanredis``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.embedded import find_running
from orchestrator.errors import OrchestratorError, RedisUnavailableError
from orchestrator.redis_checks import check_eviction_policy
from orchestrator.settings import Settings

if TYPE_CHECKING:
    import redis

    from orchestrator.leanredis import LeanRedis

Caller = Literal["client", "dev", "worker", "worker-process"]

SCHEMES = ("redis://", "rediss://", "unix://")


def check_url(url: str, *, source: str = "the Redis URL") -> str:
    """Refuse, in one line (exit 2), a URL that redis-py cannot connect with."""
    problem = None
    if not url.startswith(SCHEMES):
        problem = f"it must start with {', '.join(SCHEMES)}"
    elif lean_client(url, 1.0) is None:  # LeanRedis parses the plain ones, without redis-py
        from redis.connection import parse_url  # noqa: PLC0415

        try:
            parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            problem = str(exc)
    if problem is not None:
        raise OrchestratorError(
            f"{source}={redact(url)!r} is not a Redis URL: {problem} "
            "(for example redis://localhost:6379/0)"
        )
    return url


def resolve_url(settings: Settings) -> str:
    if settings.redis_url:
        return check_url(settings.redis_url, source="ORCH_REDIS_URL")
    url = find_running(settings.data_dir)
    if url is None:
        raise RedisUnavailableError(
            f"ORCH_REDIS_URL is unset and no embedded Redis runs in {str(settings.data_dir)!r}: "
            "start one with `orch dev` (same ORCH_DATA_DIR) or set ORCH_REDIS_URL"
        )
    return url


def connect(url: str, settings: Settings, *, who: Caller = "client") -> redis.Redis:
    """A client with the waits ``who`` needs; checks that Redis answers and never evicts."""
    import redis  # noqa: PLC0415 - the quick commands connect with connect_reads instead

    check_url(url)
    client = redis.Redis.from_url(url, **_options(url, settings, who))
    try:
        client.ping()
        if who != "worker-process":
            check_eviction_policy(client, redact(url), settings, who=who)
    except redis.RedisError as exc:
        client.close()
        raise RedisUnavailableError(f"Redis at {redact(url)} is unreachable: {exc}") from None
    except BaseException:
        client.close()
        raise
    return client


def connect_reads(url: str, settings: Settings) -> LeanRedis | redis.Redis:
    """A client for the quick read-only commands: ``LeanRedis`` where it can serve the URL.

    Same checks and waits as ``connect(url, settings)`` (a client's): Redis must
    answer within ``ORCH_CONNECT_TIMEOUT`` and must never evict.
    """
    lean = lean_client(url, settings.connect_timeout)
    if lean is None:
        return connect(url, settings)
    try:
        lean.ping()
        check_eviction_policy(lean, redact(url), settings, who="client")
    except BaseException:
        lean.close()
        raise
    return lean


def lean_client(url: str, timeout: float) -> LeanRedis | None:
    """A ``LeanRedis`` for ``url``, or None: it needs redis-py, or hiredis is absent."""
    try:
        from orchestrator.leanredis import LeanRedis  # noqa: PLC0415 - needs hiredis (CPython)
    except ImportError:
        return None
    try:
        return LeanRedis.from_url(url, timeout=timeout, where=redact(url))
    except ValueError:  # malformed (a port out of range): redis-py's check words it
        return None


def _options(url: str, settings: Settings, who: Caller) -> dict[str, Any]:
    import redis  # noqa: PLC0415
    from redis.backoff import ExponentialBackoff, NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    from orchestrator.stalls import WORKER_PATIENCE, StallLoggingRetry  # noqa: PLC0415

    timeout = settings.connect_timeout
    retry: Retry
    if who in ("worker", "worker-process"):
        retries = math.ceil(WORKER_PATIENCE / timeout)
        retry = StallLoggingRetry(ExponentialBackoff(cap=2.0, base=0.1), retries, redact(url))
    else:
        retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    return {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": retry,
        "health_check_interval": 30,
    }


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
