"""A development environment: Redis (embedded unless configured) plus a worker pool.

``orch dev`` runs it in the foreground; ``orch demo`` runs it around a batch
of sample runs. If an embedded server of the same ``ORCH_DATA_DIR`` already
runs, it is used rather than started twice: shared when the command that
started it still runs (another ``orch dev``), adopted (and stopped on exit)
when that command is gone. ``redis_origin`` says which, in words.

Everything started here is stopped by the ``finally`` blocks, also when the
start itself is interrupted (Ctrl-C, or a SIGTERM turned into the same
exception by ``orch``'s signal handling).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from orchestrator.connection import connect
from orchestrator.embedded import EmbeddedRedis, find_server
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
    redis_origin: str = ""


def known_queues(url: str, settings: Settings) -> set[str]:
    """Queues named by registered workflows, so the pool serves every step."""
    client = connect(url, settings, who="dev")
    try:
        return RunReader(client, Keys(settings.key_prefix)).queues()
    finally:
        client.close()


def _open_redis(settings: Settings, stack: ExitStack) -> tuple[str, EmbeddedRedis | None, str]:
    """(url, the server this process stops on exit or None, where it comes from)."""
    if settings.redis_url:
        return settings.redis_url, None, "ORCH_REDIS_URL"
    where = f"AOF in {settings.data_dir}"
    found = find_server(settings.data_dir)
    if found is not None and not found.orphaned:
        return (
            found.url,
            None,
            f"embedded, shared with pid {found.owner_pid}, which stops it; {where}",
        )
    if found is not None:
        adopted = EmbeddedRedis.adopt(settings.data_dir, found)
        stack.callback(adopted.stop)
        owner = f"pid {found.owner_pid}" if found.owner_pid is not None else "a process"
        return (
            found.url,
            adopted,
            f"embedded, left running by {owner}, which is gone: adopted, it stops with this "
            f"command; {where}",
        )
    embedded = EmbeddedRedis(settings.data_dir)
    stack.callback(embedded.stop)
    return embedded.start(), embedded, f"embedded, {where}"


@contextmanager
def dev_environment(
    settings: Settings,
    *,
    concurrency: int,
    queues: Sequence[str] = (),
    loglevel: str = "WARNING",
    events: bool = False,
) -> Iterator[DevEnvironment]:
    with ExitStack() as stack:
        url, embedded, origin = _open_redis(settings, stack)
        wanted = sorted({settings.default_queue, *queues, *known_queues(url, settings)})
        pool = WorkerPool(url, log_dir=settings.data_dir / "logs", key_prefix=settings.key_prefix)
        stack.callback(pool.stop)
        pool.start(wanted, concurrency=concurrency, loglevel=loglevel, events=events)
        yield DevEnvironment(url, pool, wanted, embedded, origin)
