"""Checks a worker makes before it consumes: refuse an evicting Redis.

They run on Celery's ``worker_init`` signal, in the worker's main process,
before any message is taken, whether the worker was started by ``orch
worker``, by ``orch dev`` or by ``celery -A workers.app worker``. A refusal is
one line on stderr and exit code 2: a supervisor sees a configuration error,
not a crash to retry. Celery swallows exceptions raised by signal handlers, so
the refusal leaves by ``SystemExit``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from celery import Celery, signals

from orchestrator.connection import connect
from orchestrator.errors import OrchestratorError, RedisUnavailableError
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator.worker")

#: Seconds between two "still waiting for Redis" lines at start.
WAITING_EVERY = 30.0


def install_start_checks(app: Celery, settings: Settings, url: str) -> None:
    """Run ``check_redis`` when a worker of ``app`` initialises."""

    def on_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            check_redis(url, settings)

    signals.worker_init.connect(on_init, weak=False)


def check_redis(url: str, settings: Settings) -> None:
    """Wait for Redis to answer, then refuse it (exit 2) if it may evict keys.

    A Redis that is down at start is waited for, as Celery waits for its
    broker, rather than skipped: the check must not depend on start order.
    """
    said_at: float | None = None
    while True:
        try:
            connect(url, settings, who="worker").close()
            return
        except RedisUnavailableError as exc:
            now = time.monotonic()
            if said_at is None or now - said_at >= WAITING_EVERY:
                log.warning("%s; waiting for it before the worker starts", exc)
                said_at = now
            time.sleep(1.0)
        except OrchestratorError as exc:
            print(f"orch worker: error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(exc.exit_code) from None
