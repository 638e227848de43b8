"""The benchmark's private world: one Redis, orchestrator workers and plain workers.

Both sides share one ``redis-server`` (the product's ``EmbeddedRedis``, on a
free port) and run on workers with the same Celery settings (prefork, same
concurrency, no mingle/gossip/heartbeat), so that a ratio between them
compares the two ways of running a workflow and nothing else. Everything
started here is stopped in ``stop()``, which ``__main__`` calls from a
``finally`` (Ctrl-C and SIGTERM included).

It also reads the quantities that need to know these processes: Redis
``INFO commandstats`` and per-process CPU time (see ``probes``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import celery
import redis
from celery import Celery

from bench.probes import proc_cpu, workers_cpu
from orchestrator import Client
from orchestrator.embedded import EmbeddedRedis
from workers.pool import WorkerPool, WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
ORCH_QUEUE = "orch"
PLAIN_QUEUE = "plain"


def plain_worker_command(concurrency: int, hostname: str) -> list[str]:
    """The plain side's worker: the same settings ``workers.pool`` gives the orchestrator."""
    return [
        *(sys.executable, "-m", "celery", "-A", "bench.plain", "worker"),
        *("-Q", PLAIN_QUEUE, "-c", str(concurrency), "-P", "prefork", "-n", hostname),
        *("--loglevel", "WARNING", "--without-mingle", "--without-gossip"),
        "--without-heartbeat",
    ]


def stop_all(workers: list[WorkerProcess], timeout: float = 15.0) -> None:
    """Warm-stop workers in parallel; SIGKILL (with their children) any that hang."""
    for w in workers:
        if w.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                w.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()


def machine_info(r: redis.Redis) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    server = r.info("server")
    return {
        "git": _git(),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis": server.get("redis_version"),
        "celery": celery.__version__,
        "kombu": _version("kombu"),
        "redis_py": redis.__version__,
    }


def _git() -> dict[str, Any] | None:
    """The commit measured, and whether the tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def _version(module: str) -> str:
    from importlib.metadata import version

    try:
        return version(module)
    except Exception:
        return "?"


class Harness:
    """Starts and stops the shared Redis and both sides' workers."""

    def __init__(self, workdir: Path, *, concurrency: int = 2) -> None:
        self.workdir = workdir
        self.concurrency = concurrency
        self.server = EmbeddedRedis(workdir / "redis")
        self.pool: WorkerPool | None = None
        self.plain_workers: list[WorkerProcess] = []
        self.extra_pools: list[WorkerPool] = []
        self.layout = (0, 0)
        self._client: Client | None = None
        self._plain_app: Celery | None = None
        self._r: redis.Redis | None = None
        self.machine: dict[str, Any] = {}

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        self.server.start()
        # The plain app and every child process find Redis through the environment.
        os.environ["BENCH_REDIS_URL"] = self.server.url
        os.environ["ORCH_REDIS_URL"] = self.server.url
        self.machine = machine_info(self.r)
        self.set_workers(processes=1, concurrency=self.concurrency)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def r(self) -> redis.Redis:
        if self._r is None:
            self._r = redis.Redis.from_url(self.url, decode_responses=True)
        return self._r

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url)
        return self._client

    @property
    def plain_app(self) -> Celery:
        if self._plain_app is None:
            from bench.plain import create_app

            self._plain_app = create_app()
        return self._plain_app

    def set_workers(self, *, processes: int, concurrency: int) -> None:
        """(Re)start both sides with ``processes`` workers of ``concurrency`` children each."""
        if self.layout == (processes, concurrency):
            return
        self._stop_workers()
        log_dir = self.workdir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        # Plain first, without waiting, so both sides boot at the same time.
        hostnames = []
        for i in range(processes):
            name = f"plain{i}-{uuid.uuid4().hex[:6]}"
            log_path = log_dir / f"{name}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    plain_worker_command(concurrency, f"{name}@%h"),
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self.plain_workers.append(WorkerProcess(proc, f"{name}@%h", log_path))
            hostnames.append(f"{name}@{socket.gethostname()}")
        self.pool = WorkerPool(self.url, log_dir=log_dir)
        self.pool.start([ORCH_QUEUE], concurrency=concurrency, processes=processes)
        self._wait_plain_ready(hostnames)
        self.layout = (processes, concurrency)

    def _wait_plain_ready(self, hostnames: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(hostnames)
        while pending:
            for w in self.plain_workers:
                if w.process.poll() is not None:
                    raise RuntimeError(f"plain worker exited at start; see {w.log_path}")
            replies = self.plain_app.control.ping(timeout=0.5)
            for reply in replies:
                pending -= set(reply)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"plain workers not ready after {timeout}s: {pending}")

    def ttl_pool(self, queue: str, ttl: int) -> WorkerPool:
        """An extra orchestrator worker whose finished runs expire after ``ttl`` seconds."""
        pool = WorkerPool(
            self.url, log_dir=self.workdir / "logs-ttl", env={"ORCH_RUN_TTL": str(ttl)}
        )
        self.extra_pools.append(pool)
        pool.start([queue], concurrency=1)
        return pool

    def drop_pool(self, pool: WorkerPool) -> None:
        """Stop one of the extra pools early (it would otherwise idle until ``stop``)."""
        stop_all(pool.workers)
        pool.workers = []
        self.extra_pools.remove(pool)

    def _stop_workers(self) -> None:
        """SIGTERM every worker at once, then wait: a warm shutdown takes seconds each."""
        workers = [*(self.pool.workers if self.pool else []), *self.plain_workers]
        stop_all(workers)
        if self.pool is not None:
            self.pool.workers = []
            self.pool = None
        self.plain_workers = []
        self.layout = (0, 0)

    def stop(self) -> None:
        """Stop everything this harness started; safe to call twice or half-started."""
        with contextlib.suppress(Exception):
            stop_all([w for pool in self.extra_pools for w in pool.workers])
        for pool in self.extra_pools:
            pool.workers = []
        self.extra_pools = []
        with contextlib.suppress(Exception):
            self._stop_workers()
        for closer in (self._client, self._r):
            with contextlib.suppress(Exception):
                if closer is not None:
                    closer.close()
        if self._plain_app is not None:
            with contextlib.suppress(Exception):
                self._plain_app.close()
        self.server.stop()

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- probes ---------------------------------------------------------------

    def commandstats(self) -> dict[str, tuple[int, int]]:
        """``{command: (calls, usec)}``; commands run inside Lua scripts are counted too."""
        raw = self.r.info("commandstats")
        return {
            k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for k, v in raw.items()
        }

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of Redis, each side's workers, and this (client) process."""
        times = os.times()
        pid = self.server.process.pid if self.server.process else 0
        orch = self.pool.workers if self.pool else []
        out = {"redis": proc_cpu(pid), "client": times.user + times.system}
        for side, workers in (("orch", orch), ("plain", self.plain_workers)):
            main = sum(proc_cpu(w.pid) for w in workers)
            out[f"{side}_workers"] = workers_cpu(workers)
            out[f"{side}_main"] = main
            out[f"{side}_children"] = out[f"{side}_workers"] - main
        return out

    def used_memory(self) -> int:
        return int(self.r.info("memory")["used_memory"])
