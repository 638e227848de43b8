"""Launching worker processes: ``orch dev``, ``orch demo`` and the tests use this.

Each worker is a real ``celery worker`` process (prefork by default), started
with ``ORCH_REDIS_URL`` pointing at the chosen Redis. Readiness is read from
the heartbeat key each worker writes once it consumes, not from log scraping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from orchestrator.errors import OrchestratorError
from orchestrator.keys import Keys
from orchestrator.userpath import pythonpath_with_cwd
from workers.names import unique_node_name


def worker_command(
    queues: Sequence[str],
    *,
    concurrency: int,
    hostname: str,
    loglevel: str = "WARNING",
    pool: str = "prefork",
    events: bool = False,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "-Q",
        ",".join(queues),
        "-c",
        str(concurrency),
        "-n",
        hostname,
        "-P",
        pool,
        "--loglevel",
        loglevel,
        "--without-mingle",
        "--without-gossip",
    ]
    if events:
        cmd.append("-E")
    else:
        cmd.append("--without-heartbeat")
    return cmd


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], hostname: str, log_path: Path) -> None:
        self.process = process
        self.hostname = hostname
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def child_pids(self) -> list[int]:
        """Pids of the prefork pool's children (read from /proc)."""
        out: list[int] = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == self.pid:
                    out.append(int(entry.name))
        return out

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        for pid in [*self.child_pids(), self.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class WorkerPool:
    """A set of worker processes against one Redis."""

    def __init__(
        self,
        redis_url: str,
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        key_prefix: str = "orch:",
    ) -> None:
        self.redis_url = redis_url
        self.log_dir = Path(log_dir)
        self.extra_env = env or {}
        self.keys = Keys(key_prefix)
        self.workers: list[WorkerProcess] = []

    def start(
        self,
        queues: Sequence[str],
        *,
        concurrency: int = 2,
        processes: int = 1,
        wait: float = 60.0,
        loglevel: str = "WARNING",
        events: bool = False,
    ) -> list[WorkerProcess]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.extra_env, "ORCH_REDIS_URL": self.redis_url}
        # The launching command's working directory, where the user's step modules are.
        env["PYTHONPATH"] = pythonpath_with_cwd(env.get("PYTHONPATH"))
        started = []
        for _ in range(processes):
            hostname = unique_node_name()
            log_path = self.log_dir / f"{hostname.split('@', maxsplit=1)[0]}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    worker_command(
                        queues,
                        concurrency=concurrency,
                        hostname=hostname,
                        loglevel=loglevel,
                        events=events,
                    ),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            started.append(WorkerProcess(proc, hostname, log_path))
            self.workers.append(started[-1])  # stop() reaches it even if start is interrupted
        self._wait_ready(started, wait)
        return started

    def _wait_ready(self, workers: list[WorkerProcess], timeout: float) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            deadline = time.monotonic() + timeout
            pending = list(workers)
            while pending:
                for w in list(pending):
                    keys = client.keys(self.keys.worker(w.hostname.split("@")[0] + "@*"))
                    if keys:
                        pending.remove(w)
                    elif w.process.poll() is not None:
                        raise OrchestratorError(
                            f"worker {w.hostname} exited at start; see {w.log_path}"
                        )
                if pending and time.monotonic() > deadline:
                    raise OrchestratorError(
                        f"workers not ready after {timeout}s; see {self.log_dir}"
                    )
                time.sleep(0.1)
        finally:
            client.close()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
