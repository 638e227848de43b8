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
  logged at once, but the call is retried for ``WORKER_PATIENCE`` seconds
  before it fails, since a worker has work in hand and a Redis restart or
  failover usually passes.

All but ``worker-process`` also refuse a Redis that may evict keys (see
``redis_checks``); a worker's processes rely on the check made at its start.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from orchestrator.embedded import find_running
from orchestrator.errors import OrchestratorError, RedisUnavailableError
from orchestrator.redis_checks import check_eviction_policy
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator.redis")
T = TypeVar("T")

Caller = Literal["client", "dev", "worker", "worker-process"]

#: Seconds a worker's Redis call keeps retrying through a stall before it fails.
WORKER_PATIENCE = 20.0

SCHEMES = ("redis://", "rediss://", "unix://")


def check_url(url: str, *, source: str = "the Redis URL") -> str:
    """Refuse, in one line (exit 2), a URL that redis-py cannot connect with."""
    from redis.connection import parse_url  # noqa: PLC0415

    problem = None
    if not url.startswith(SCHEMES):
        problem = f"it must start with {', '.join(SCHEMES)}"
    else:
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


def _options(url: str, settings: Settings, who: Caller) -> dict[str, Any]:
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


class StallLoggingRetry(Retry):
    """Retry a worker's Redis call through a stall, saying so when it starts and ends.

    Without this a worker whose Redis froze said nothing until its patience ran
    out. Each connection gets its own copy (redis-py copies the retry object).
    """

    def __init__(self, backoff: ExponentialBackoff, retries: int, where: str) -> None:
        super().__init__(backoff, retries)
        self.where = where

    def call_with_retry(
        self, do: Callable[[], T], fail: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> T:
        first: list[float] = []

        def noted(error: Exception, *count: int) -> Any:
            if not first:
                first.append(time.monotonic())
                log.warning(
                    "Redis at %s did not answer (%s: %s); retrying for about %gs",
                    self.where,
                    type(error).__name__,
                    error,
                    WORKER_PATIENCE,
                )
            return fail(error, *count)

        try:
            result = super().call_with_retry(do, noted, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, TimeoutError) as exc:
            if first:
                took = time.monotonic() - first[0]
                log.error("Redis at %s: gave up after %.1fs: %s", self.where, took, exc)
            raise
        except Exception:  # Redis answered, with an error (NOSCRIPT, say): the stall is over
            self._answered(first)
            raise
        self._answered(first)
        return result

    def _answered(self, first: list[float]) -> None:
        if first:
            took = time.monotonic() - first[0]
            log.warning("Redis at %s answered again, %.1fs after it first failed", self.where, took)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
