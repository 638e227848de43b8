"""``python -m bench.recovery``: how soon a step runs again after its worker is killed.

Two faults, each on its own private Redis and workers with the default lease
(``ORCH_LEASE_SECONDS``, 10 s), repeated ``--rounds`` times:

- ``child``: SIGKILL of the prefork child running a 5 s step. The worker's main
  process sees the child die and records its attempt lost at once.
- ``worker``: SIGKILL of the whole worker (main process and children). Nothing
  of it is left to notice: the other worker's sweep finds the lease run out.

The figure is the time from the kill to the start of the step's second
attempt, as the step itself records it (same host, same clock). Never part of
the test suite: timings depend on the machine and its load.

    python -m bench.recovery [--rounds 5] [--only child,worker]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis
from orchestrator.settings import Settings
from workers.pool import WorkerPool


def _starts(r: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(f"bench:starts:{run_id}", 0, -1)]


def _wait_start(r: redis.Redis, run_id: str, attempt: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in _starts(r, run_id):
            if s["attempt"] == attempt:
                return s
        time.sleep(0.01)
    raise TimeoutError(f"run {run_id}: attempt {attempt} did not start within {timeout}s")


def one_round(fault: str, work: Path) -> float:
    """Seconds from the kill to the second attempt's start, for one fault."""
    server = EmbeddedRedis(work / "redis")
    url = server.start()
    processes, concurrency = (1, 2) if fault == "child" else (2, 1)
    queue = f"rec-{uuid.uuid4().hex[:8]}"
    pool = WorkerPool(url, log_dir=work / "logs")
    client = Client(url, settings=Settings(redis_url=url))
    r = redis.Redis.from_url(url)
    try:
        pool.start([queue], concurrency=concurrency, processes=processes)
        flow = Flow(f"rec-{uuid.uuid4().hex[:8]}", 1)
        flow.step("s", "bench.steps:watched", queue=queue, retry={"max_attempts": 3, "initial": 0})
        run = client.submit(flow.build(), {"seconds": 5.0})
        first = _wait_start(r, run.id, 1, 30)
        time.sleep(0.5)  # well inside the step, its lease freshly renewed
        killed = time.time()
        if fault == "child":
            os.kill(first["pid"], signal.SIGKILL)
        else:
            (victim,) = [w for w in pool.workers if w.pid == first["ppid"]]
            victim.kill()
        second = _wait_start(r, run.id, 2, 60)
        run.wait(timeout=30)
        return float(second["t"]) - killed
    finally:
        r.close()
        client.close()
        pool.stop()
        server.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="child,worker")
    args = p.parse_args(argv)
    lease = Settings().lease_seconds
    print(f"lease {lease:g}s, {args.rounds} rounds per fault")
    for fault in args.only.split(","):
        times = []
        for k in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="orch-recovery-") as tmp:
                times.append(one_round(fault, Path(tmp) / str(k)))
        print(
            f"{fault:7s} kill -> step runs again: median {statistics.median(times):.2f}s, "
            f"min {min(times):.2f}s, max {max(times):.2f}s  "
            f"({', '.join(f'{t:.2f}' for t in times)})"
        )


if __name__ == "__main__":
    main()
