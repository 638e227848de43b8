"""Finding Redis and connecting to it with bounded waits.

Every entry point goes through here, so "Redis is unreachable" is one error
(exit code 3) raised within ``ORCH_CONNECT_TIMEOUT`` seconds, never a hang.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.embedded import find_running
from orchestrator.errors import RedisUnavailableError
from orchestrator.settings import Settings


def resolve_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    url = find_running(settings.data_dir)
    if url is None:
        raise RedisUnavailableError(
            f"ORCH_REDIS_URL is unset and no embedded Redis runs in {str(settings.data_dir)!r}: "
            "start one with `orch dev` (same ORCH_DATA_DIR) or set ORCH_REDIS_URL"
        )
    return url


def connect(url: str, settings: Settings) -> redis.Redis:
    """A client that fails fast when Redis is down, and check that it answers."""
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=max(settings.connect_timeout, 10.0),
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise RedisUnavailableError(f"Redis at {redact(url)} is unreachable: {exc}") from None
    return client


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
