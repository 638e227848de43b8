"""The API served by uvicorn on a thread, against the session's real Redis and workers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from orchestrator import Client
from orchestrator.api.serve import ServerThread
from orchestrator.embedded import EmbeddedRedis
from orchestrator.settings import Settings
from workers.pool import WorkerPool

ALLOWED = "tests.steps,orchestrator.examples"


def api_settings(url: str, **extra: object) -> Settings:
    return Settings(redis_url=url, task_modules=ALLOWED, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def api_server(redis_server: EmbeddedRedis, workers: WorkerPool) -> Iterator[ServerThread]:
    client = Client(redis_server.url, settings=api_settings(redis_server.url))
    server = ServerThread(client).start()
    yield server
    server.stop()
    client.close()


@pytest.fixture
def http(api_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=30) as c:
        yield c
