"""Riding out a Redis stall in a worker, and saying so when it starts and ends.

A worker has work in hand, and a Redis restart or failover usually passes, so
its Redis calls are retried for ``WORKER_PATIENCE`` seconds instead of failing
at the first timeout (``connection.connect`` with ``who="worker"`` or
``"worker-process"``). Kept apart from ``connection`` because it subclasses
redis-py's ``Retry``, and the quick commands must not import redis-py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

log = logging.getLogger("orchestrator.redis")
T = TypeVar("T")

#: Seconds a worker's Redis call keeps retrying through a stall before it fails.
WORKER_PATIENCE = 20.0


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
