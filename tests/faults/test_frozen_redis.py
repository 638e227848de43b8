"""A Redis that accepts connections but never answers (SIGSTOP) is reported, not waited on.

The kernel still accepts TCP connections for a stopped redis-server, so only a
bounded read notices it. ``orch submit``, ``orch status`` and ``orch runs`` exit
3 with one line, and ``Client`` raises ``RedisUnavailableError``, within about
``ORCH_CONNECT_TIMEOUT`` (3 s) each (it took 41 s). ``BOUND`` is what
"bounded" means here, generous for a loaded machine, not a performance figure.

Workers are more patient: a worker whose Redis stalls logs it at once, keeps
retrying, and carries its step on when Redis answers again.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis
from orchestrator.errors import RedisUnavailableError
from orchestrator.settings import Settings
from tests.cli.test_cli import assert_one_line_error, orch, write_spec
from tests.integration.helpers import private_cluster, wait_until

pytestmark = [pytest.mark.integration]

#: Far below the 41 s it took, far above ORCH_CONNECT_TIMEOUT (3 s) plus start-up.
BOUND = 15.0
STALL = "did not answer"


def freeze(server: EmbeddedRedis) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def thaw(server: EmbeddedRedis) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    s = EmbeddedRedis(tmp_path / "redis")
    s.start()
    try:
        yield s
    finally:
        thaw(s)
        s.stop()


def test_cli_commands_exit_3_within_the_bound(server: EmbeddedRedis, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "frozen", '  a: {task: "tests.steps.basic:emit"}\n')
    env = {**os.environ, "ORCH_REDIS_URL": server.url}
    freeze(server)
    for args in (
        ["submit", str(spec), "--input", "{}"],
        ["status", "no-such-run"],
        ["runs", "--stuck"],
    ):
        started = time.monotonic()
        proc = orch(*args, env=env, timeout=120)
        took = time.monotonic() - started
        assert_one_line_error(proc, 3, "unreachable")
        assert took < BOUND, f"orch {args[0]} took {took:.1f}s to report a frozen Redis"


def test_client_calls_raise_within_the_bound(server: EmbeddedRedis) -> None:
    settings = Settings(redis_url=server.url)
    client = Client(server.url, settings=settings)
    wf = Flow(f"frozen-{uuid.uuid4().hex[:6]}", 1).step("a", "tests.steps.basic:emit").build()
    run = client.submit(wf, {})  # no worker serves it: the run stays put
    freeze(server)
    calls = {
        "submit": lambda: client.submit(wf, {"value": 2}),
        "status": run.status,
        "runs": lambda: client.runs(limit=5),
        "Client()": lambda: Client(server.url, settings=settings),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError, match="unreachable"):
            call()
        took = time.monotonic() - started
        assert took < BOUND, f"{name} took {took:.1f}s to report a frozen Redis"
    thaw(server)
    assert run.status()["state"] in ("PENDING", "RUNNING"), "the run was lost"
    client.close()


def test_a_worker_logs_a_stall_at_once_and_rides_it_out(tmp_path: Path) -> None:
    """Redis freezes while a step runs: the worker says so while it is still frozen,
    and the step, held longer than ORCH_CONNECT_TIMEOUT, still succeeds in one attempt."""
    queue = f"frozen-{uuid.uuid4().hex[:8]}"
    with private_cluster(tmp_path, queue=queue, processes=1, concurrency=1, lease=30) as c:
        wf = Flow(f"stall-{uuid.uuid4().hex[:6]}", 1).step(
            "nap", "tests.steps.basic:sleepy", queue=queue
        )
        run = c.client.submit(wf.build(), {"delay": 1.0})
        wait_until(lambda: run.status()["steps"]["nap"]["state"] == "RUNNING", timeout=60)
        # The body's own Redis writes (it records its start) are done: from here on it only
        # sleeps, so what the freeze meets is the worker's own call recording the outcome.
        wait_until(lambda: bool(c.r.exists(f"test:order:{run.id}")), timeout=60)
        log = c.pool.workers[0].log_path
        freeze(c.server)
        try:
            wait_until(lambda: STALL in log.read_text(), timeout=BOUND)
            time.sleep(2.0)  # the step body is over: its outcome waits for Redis
        finally:
            thaw(c.server)
        doc = run.wait(60)
        assert doc["state"] == "SUCCEEDED", doc["error"]
        assert doc["steps"]["nap"]["attempts"] == 1, doc["steps"]["nap"]
        text = log.read_text()
        assert "answered again" in text, text
        assert all(w.process.poll() is None for w in c.pool.workers), "a worker died"
