"""A development environment: Redis (embedded unless configured) plus a worker pool.

``orch dev`` runs it in the foreground; ``orch demo`` runs it around a batch
of sample runs. If an embedded server of the same ``ORCH_DATA_DIR`` already
runs (another ``orch dev``), it is reused rather than started twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from orchestrator.connection import connect
from orchestrator.embedded import EmbeddedRedis, find_running
from orchestrator.keys import Keys
from orchestrator.settings import Settings
from orchestrator.store import RunReader
from workers.pool import WorkerPool


@dataclass
class DevEnvironment:
    url: str
    pool: WorkerPool
    queues: list[str]
    embedded: EmbeddedRedis | None


def known_queues(url: str, settings: Settings) -> set[str]:
    """Queues named by registered workflows, so the pool serves every step."""
    client = connect(url, settings, who="dev")
    try:
        return RunReader(client, Keys(settings.key_prefix)).queues()
    finally:
        client.close()


@contextmanager
def dev_environment(
    settings: Settings,
    *,
    concurrency: int,
    queues: Sequence[str] = (),
    loglevel: str = "WARNING",
    events: bool = False,
) -> Iterator[DevEnvironment]:
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url or find_running(settings.data_dir)
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = embedded.start()
    try:
        wanted = sorted({settings.default_queue, *queues, *known_queues(url, settings)})
        pool = WorkerPool(url, log_dir=settings.data_dir / "logs", key_prefix=settings.key_prefix)
        try:
            pool.start(wanted, concurrency=concurrency, loglevel=loglevel, events=events)
            yield DevEnvironment(url, pool, wanted, embedded)
        finally:
            pool.stop()
    finally:
        if embedded is not None:
            embedded.stop()
