"""Shared fixtures: a real redis-server on a free port and real Celery workers.

Nothing here fakes Redis or runs tasks eagerly. The session server is the
same ``EmbeddedRedis`` the product uses; fault tests start their own so they
can kill and restart it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator import Client
from orchestrator.embedded import EmbeddedRedis
from workers.pool import WorkerPool

TEST_QUEUES = ["orch", "embed", "slow"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    previous = os.environ.get("ORCH_REDIS_URL")
    os.environ["ORCH_REDIS_URL"] = server.url
    yield server
    server.stop()
    if previous is None:
        os.environ.pop("ORCH_REDIS_URL", None)
    else:
        os.environ["ORCH_REDIS_URL"] = previous


@pytest.fixture(scope="session")
def workers(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerPool]:
    """Two worker processes of two prefork children each, shared by the session."""
    pool = WorkerPool(redis_server.url, log_dir=tmp_path_factory.mktemp("worker-logs"))
    pool.start(TEST_QUEUES, concurrency=2, processes=2)
    yield pool
    pool.stop()


@pytest.fixture
def client(redis_server: EmbeddedRedis) -> Iterator[Client]:
    c = Client(redis_server.url)
    yield c
    c.close()


@pytest.fixture
def r(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield conn
    conn.close()


@pytest.fixture
def wf_name() -> str:
    """A workflow name no other test uses, so versions never collide."""
    return f"t-{uuid.uuid4().hex[:10]}"


def executions(r: redis.Redis, run_id: str) -> dict[str, int]:
    """How many times each step body ran, by idempotency key (see tests/steps/basic.py)."""
    return {k: int(v) for k, v in r.hgetall(f"test:exec:{run_id}").items()}


def step_starts(r: redis.Redis, run_id: str) -> list[tuple[str, float]]:
    out = []
    for entry in r.lrange(f"test:order:{run_id}", 0, -1):
        name, t, _ = entry.rsplit(":", 2)
        out.append((name, float(t)))
    return out


def logs_of(pool: WorkerPool) -> str:
    return "\n".join(Path(w.log_path).read_text() for w in pool.workers)
