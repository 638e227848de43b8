"""Reading a run's event history and its side records in assertions."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from orchestrator import Client, Flow, Run
from orchestrator.embedded import EmbeddedRedis
from orchestrator.keys import Keys
from orchestrator.settings import Settings
from tests.conftest import executions, step_starts
from workers.pool import WorkerPool

WAIT = 60.0

NODE = "tests.steps.dag:node"
NAMES = "abcdefgh"
WEIGHTS = {s: w for s, w in zip(NAMES, (2, 3, 5, 7, 11, 13, 17, 19), strict=True)}


def node_flow(name: str, ups: dict[str, list[str]], **step_fields: dict[str, Any]) -> Flow:
    """A workflow of ``tests.steps.dag:node`` steps shaped by ``ups`` (step -> upstreams)."""
    flow = Flow(name, 1)
    for s, after in ups.items():
        flow.step(s, NODE, after=after, **step_fields.get(s, {}))
    return flow


def expected_values(ups: dict[str, list[str]]) -> dict[str, int]:
    """What each node outputs as ``value``: its weight plus its upstreams' values."""
    values: dict[str, int] = {}
    for s in NAMES:  # a..h is a topological order in every shape the tests use
        if s in ups:
            values[s] = WEIGHTS[s] + sum(values[u] for u in ups[s])
    return values


def expected_output(ups: dict[str, list[str]], step: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "step": step,
        "value": expected_values(ups)[step],
        "got": {u: u for u in ups[step]},
        "attempt": attempt,
    }


def step_events(events: list[dict[str, Any]], step: str) -> list[dict[str, Any]]:
    """The state transitions of one step (map-element retry notes have no ``to``)."""
    return [e for e in events if e.get("step") == step and "to" in e]


def run_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if "step" not in e]


def path(events: list[dict[str, Any]], step: str) -> list[str]:
    """The states one step went through, in order, starting from PENDING."""
    moves = step_events(events, step)
    return [moves[0]["from"], *(e["to"] for e in moves)] if moves else []


def entered(events: list[dict[str, Any]], step: str, state: str) -> list[float]:
    """Times at which ``step`` entered ``state``."""
    return [e["t"] for e in step_events(events, step) if e["to"] == state]


def succeeded_at(events: list[dict[str, Any]], step: str) -> float:
    times = entered(events, step, "SUCCEEDED")
    assert len(times) == 1, f"{step} succeeded {len(times)} times: {step_events(events, step)}"
    return times[0]


def starts_by_step(r: redis.Redis, run_id: str) -> dict[str, list[float]]:
    """When each step body started (from the steps' own records), by step name."""
    out: dict[str, list[float]] = {}
    for name, t in step_starts(r, run_id):
        out.setdefault(name, []).append(t)
    return out


def only_start(starts: dict[str, list[float]], step: str) -> float:
    times = starts.get(step, [])
    assert len(times) == 1, f"{step} started {len(times)} times"
    return times[0]


def expect_executions(r: redis.Redis, run: Run, steps: list[str]) -> None:
    """Each named step body ran exactly once in this run, and nothing else ran."""
    assert executions(r, run.id) == {f"{run.id}/{s}": 1 for s in steps}


def run_ids_of(client: Client, ref: str) -> list[str]:
    """Every run of one workflow version the store knows about."""
    keys = Keys(client.settings.key_prefix)
    ids = [i.decode() for i in client.redis.zrange(keys.runs, 0, -1)]
    return [i for i in ids if client.redis.hget(keys.run(i), "wf") == ref.encode()]


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        time.sleep(interval)


class DoneListener:
    """Collects every end-of-run notification; subscribe before submitting."""

    def __init__(self, r: redis.Redis, prefix: str = "orch:") -> None:
        self.prefix = prefix
        self.pubsub = r.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(f"{prefix}done:*")
        self.seen: list[tuple[str, str]] = []

    def notices(self, run_id: str, drain: float = 0.5) -> list[str]:
        """What was published on ``run_id``'s channel (reads for ``drain`` seconds first)."""
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            m = self.pubsub.get_message(timeout=0.1)
            if m is not None:
                self.seen.append((str(m["channel"]), str(m["data"])))
        return [data for channel, data in self.seen if channel == f"{self.prefix}done:{run_id}"]

    def close(self) -> None:
        self.pubsub.close()


def pool_processes(hostnames: list[str]) -> list[int]:
    """Live processes of the given workers (main or pool child, orphaned or not)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(h in cmdline for h in hostnames):
            found.append(int(entry.name))
    return found


@dataclass
class Cluster:
    """A private redis-server and worker pool, for tests that kill or restart them."""

    server: EmbeddedRedis
    pool: WorkerPool
    client: Client
    r: redis.Redis
    queue: str


def log_tails(log_dir: Path, lines: int = 40) -> str:
    """The end of every worker log, to read when a test failed."""
    out = []
    for log in sorted(log_dir.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(out)


@contextlib.contextmanager
def private_cluster(
    base: Path,
    *,
    queue: str,
    processes: int,
    concurrency: int,
    lease: float,
    env: dict[str, str] | None = None,
    redis_args: tuple[str, ...] = (),
) -> Iterator[Cluster]:
    """Start Redis and workers with short leases; stop them and every stray process after.

    ``env`` is added to the workers' environment, ``redis_args`` to redis-server's options.
    """
    server = EmbeddedRedis(base / "redis", extra_args=redis_args)
    url = server.start()
    worker_env = {"ORCH_LEASE_SECONDS": f"{lease:g}", **(env or {})}
    pool = WorkerPool(url, log_dir=base / "logs", env=worker_env)
    client = Client(url, settings=Settings(redis_url=url, lease_seconds=lease))
    conn = redis.Redis.from_url(url, decode_responses=True)
    hostnames: list[str] = []
    try:
        pool.start([queue], concurrency=concurrency, processes=processes)
        hostnames = [w.hostname.split("@", 1)[0] + "@" for w in pool.workers]
        yield Cluster(server, pool, client, conn, queue)
    finally:
        print(log_tails(base / "logs"))  # pytest shows it when the test failed
        pool.stop()
        for pid in pool_processes(hostnames):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        conn.close()
        client.close()
        server.stop()
