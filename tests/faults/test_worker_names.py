"""Two workers on one host: distinct node names by default, and a warning when they share one.

Two ``orch worker`` used to both be ``celery@host``: their liveness and
capacity beats collapsed into one, and a fan-out was dispatched to half the
processes there were. Now each picks ``orch-<hex>@host``; and workers that are
given the same name anyway (``-n``, or Celery's CLI) each log that another
live worker beats under their name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.embedded import EmbeddedRedis
from orchestrator.messages import queue_list_key
from tests.cli.test_cli import ROOT
from tests.integration.helpers import wait_until
from workers.pool import WorkerProcess, worker_command

pytestmark = [pytest.mark.integration]

NAMESAKE = "beats under this worker's name"


@contextlib.contextmanager
def started(commands: list[list[str]], url: str, logs: Path) -> Iterator[list[WorkerProcess]]:
    """Run each command as a worker process; stop them (and their pool children) after."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORCH_REDIS_URL": url}
    procs: list[WorkerProcess] = []
    try:
        for k, cmd in enumerate(commands):
            log = logs / f"worker-{k}.log"
            with log.open("wb") as out:
                p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            procs.append(WorkerProcess(p, f"worker-{k}", log))
        yield procs
    finally:
        children = [pid for w in procs for pid in w.child_pids()]
        for w in procs:
            w.stop()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "redis") as s:
        yield s


def logs_of(workers: list[WorkerProcess]) -> str:
    return "\n".join(f"--- {w.log_path.name}\n{w.log_path.read_text()}" for w in workers)


def test_two_orch_workers_on_one_host_get_distinct_names(
    server: EmbeddedRedis, tmp_path: Path
) -> None:
    queue = f"names-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "orchestrator", "worker", "-Q", queue, "-c", "1"]
    r = redis.Redis.from_url(server.url, decode_responses=True)
    with started([cmd, cmd], server.url, tmp_path / "logs") as workers:
        capacity = f"orch:capacity:{queue_list_key(queue)}"
        try:
            wait_until(lambda: r.zcard(capacity) == 2, timeout=60)
        except AssertionError:
            pytest.fail(f"capacity beats: {r.zrange(capacity, 0, -1)}\n{logs_of(workers)}")
        names = sorted(m.split("|")[0] for m in r.zrange(capacity, 0, -1))
        assert len(set(names)) == 2, names
        assert all(n.startswith("orch-") for n in names), names
        beats = sorted(k.removeprefix("orch:worker:") for k in r.keys("orch:worker:*"))
        assert beats == names
        assert NAMESAKE not in logs_of(workers)
    r.close()


def test_workers_sharing_a_name_each_warn(server: EmbeddedRedis, tmp_path: Path) -> None:
    queue = f"twins-{uuid.uuid4().hex[:8]}"
    cmd = worker_command([queue], concurrency=1, hostname="twin@%h", loglevel="INFO")
    with started([cmd, cmd], server.url, tmp_path / "logs") as workers:
        try:
            wait_until(lambda: all(NAMESAKE in w.log_path.read_text() for w in workers), 60)
        except AssertionError:
            pytest.fail(f"no namesake warning in both logs:\n{logs_of(workers)}")
        for w in workers:
            warned = [line for line in w.log_path.read_text().splitlines() if NAMESAKE in line]
            assert 1 <= len(warned) <= 2, warned  # at most once a minute, not every beat
            assert "twin@" in warned[0] and "pid " in warned[0], warned
