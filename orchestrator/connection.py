"""Finding Redis and connecting to it with bounded waits.

Every entry point goes through here, so "Redis is unreachable" is one error
(exit code 3) raised within ``ORCH_CONNECT_TIMEOUT`` seconds, never a hang.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.embedded import find_running
from orchestrator.errors import OrchestratorError, RedisUnavailableError
from orchestrator.settings import Settings

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


def connect(url: str, settings: Settings) -> redis.Redis:
    """A client that fails fast when Redis is down, and check that it answers."""
    check_url(url)
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
