"""An evicting Redis is refused at start; one whose CONFIG is hidden is used, with a warning.

Under ``maxmemory-policy allkeys-lru`` Redis evicts accepted runs, their
workflow and plan without a word. The client, ``orch submit``, ``orch worker``,
a worker started by Celery's own CLI and ``orch dev`` each refuse such a server
with one line and exit code 2, before they write or consume anything.
``ORCH_ALLOW_EVICTION=1`` accepts it (with a warning). A server whose ``CONFIG``
is renamed (as managed services do) or denied by ACL cannot be checked: it is
used, with one warning per process.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis
from orchestrator.errors import OrchestratorError, RedisPolicyError
from orchestrator.settings import Settings
from tests.cli.test_cli import assert_one_line_error, orch, write_spec
from tests.integration.helpers import private_cluster
from workers.pool import WorkerPool

pytestmark = [pytest.mark.integration]

EVICTING = ("--maxmemory-policy", "allkeys-lru")
NO_CONFIG = ("--rename-command", "CONFIG", "")
REFUSAL = ("maxmemory-policy allkeys-lru", "evict accepted runs", "ORCH_ALLOW_EVICTION=1")
UNKNOWN = "cannot read maxmemory-policy"


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", extra_args=EVICTING)
    server.start()
    yield server
    server.stop()


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCH_ALLOW_EVICTION"}
    return {**env, "ORCH_REDIS_URL": url, **extra}


def untouched(url: str) -> list[bytes]:
    """Every key in the server: a refusal must have written none."""
    conn = redis.Redis.from_url(url)
    try:
        return sorted(conn.keys("*"))
    finally:
        conn.close()


def test_the_client_refuses_an_evicting_redis(
    evicting: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCH_ALLOW_EVICTION", raising=False)
    with pytest.raises(RedisPolicyError) as info:
        Client(evicting.url, settings=Settings(redis_url=evicting.url))
    message = str(info.value)
    assert all(part in message for part in REFUSAL), message
    assert "\n" not in message
    assert info.value.exit_code == 2
    assert untouched(evicting.url) == []


def test_orch_submit_worker_and_dev_refuse_it_with_one_line(
    evicting: EmbeddedRedis, tmp_path: Path
) -> None:
    env = env_for(evicting.url)
    spec = write_spec(tmp_path, "evict-me", '  a: {task: "tests.steps.basic:emit"}\n')
    assert_one_line_error(orch("submit", str(spec), env=env), 2, *REFUSAL)
    assert_one_line_error(orch("worker", "-Q", "nobody", "-c", "1", env=env), 2, *REFUSAL)
    assert_one_line_error(orch("dev", "-c", "1", env=env), 2, *REFUSAL)
    assert untouched(evicting.url) == [], "a refused command wrote to Redis"


def test_a_worker_started_by_celery_refuses_it_before_consuming(
    evicting: EmbeddedRedis, tmp_path: Path
) -> None:
    """`celery -A workers.app worker` (what WorkerPool and compose run) refuses too."""
    pool = WorkerPool(evicting.url, log_dir=tmp_path / "logs")
    try:
        with pytest.raises(OrchestratorError, match="exited at start"):
            pool.start(["nobody"], concurrency=1, wait=60)
        (worker,) = pool.workers
        assert worker.process.wait(10) == 2
        log = worker.log_path.read_text()
    finally:
        pool.stop()
    refusals = [line for line in log.splitlines() if "maxmemory-policy allkeys-lru" in line]
    assert len(refusals) == 1, log
    assert refusals[0].startswith("orch worker: error: "), log
    assert "Traceback" not in log, log
    assert not [k for k in untouched(evicting.url) if k.startswith(b"orch:")], "it beat or consumed"


def test_eviction_allowed_explicitly_runs_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ORCH_ALLOW_EVICTION", "1")
    queue = f"evict-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.WARNING, logger="orchestrator.redis")
    allow = {"ORCH_ALLOW_EVICTION": "1"}
    with private_cluster(
        tmp_path, queue=queue, processes=1, concurrency=1, lease=5, env=allow, redis_args=EVICTING
    ) as c:
        wf = Flow(f"evict-{uuid.uuid4().hex[:6]}", 1).step(
            "a", "tests.steps.basic:emit", queue=queue
        )
        run = c.client.submit(wf.build(), {"value": 4})
        assert run.wait(60)["state"] == "SUCCEEDED"
        assert run.result() == 4
        warned = [
            r.getMessage() for r in caplog.records if "ORCH_ALLOW_EVICTION is set" in r.message
        ]
        assert len(warned) == 1, caplog.text
        assert "evicted without a word" in warned[0]
        log = c.pool.workers[0].log_path.read_text()
        assert "ORCH_ALLOW_EVICTION is set" in log, log


def test_a_redis_with_config_renamed_is_used_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"noconf-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.WARNING, logger="orchestrator.redis")
    with private_cluster(
        tmp_path, queue=queue, processes=1, concurrency=1, lease=5, redis_args=NO_CONFIG
    ) as c:
        with pytest.raises(redis.ResponseError):
            c.r.config_get("maxmemory-policy")  # CONFIG really is gone
        second = Client(c.server.url, settings=Settings(redis_url=c.server.url))
        second.close()
        warned = [r for r in caplog.records if UNKNOWN in r.getMessage()]
        assert len(warned) == 1, f"expected one warning for two clients: {caplog.text}"
        wf = Flow(f"noconf-{uuid.uuid4().hex[:6]}", 1).step(
            "a", "tests.steps.basic:emit", queue=queue
        )
        run = c.client.submit(wf.build(), {"value": 2})
        assert run.wait(60)["state"] == "SUCCEEDED"
        log = c.pool.workers[0].log_path.read_text()
        assert log.count(UNKNOWN) == 1, log


def test_a_user_denied_config_by_acl_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="orchestrator.redis")
    with EmbeddedRedis(tmp_path / "redis") as server:
        admin = redis.Redis.from_url(server.url)
        admin.config_set("maxmemory-policy", "allkeys-lru")  # hidden from the user below
        admin.acl_setuser("app", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                          commands=["+@all", "-config"])  # fmt: skip
        admin.close()
        url = f"redis://app:pw@127.0.0.1:{server.port}/0"
        with Client(url, settings=Settings(redis_url=url)) as client:
            assert client.redis.ping()
        warned = [r.getMessage() for r in caplog.records if UNKNOWN in r.getMessage()]
        assert len(warned) == 1, caplog.text
        assert "pw" not in warned[0], "the password leaked into the warning"
