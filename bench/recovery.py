"""``python -m bench.recovery``: how soon a step runs again after its worker is killed.

Two faults, each on its own private Redis and workers with the default lease
(``ORCH_LEASE_SECONDS``, 10 s), repeated ``--rounds`` times:

- ``child``: SIGKILL of the prefork child running a 5 s step. The worker's main
  process sees the child die and records its attempt lost at once.
- ``worker``: SIGKILL of the whole worker (main process and children). Nothing
  of it is left to notice: the other worker's sweep finds the lease run out.
- ``message``: a queued step's message is deleted from its queue (what a Redis
  crash can do) while the only worker process is busy; the reconciler sends it
  again once the run has shown no sign of life for ``ORCH_REDISPATCH_AFTER``
  (``--redispatch-after``, default 30 s). The figure is from the loss (the
  submit, which queued the message) to the step's start.

For the kills, the figure is the time from the kill to the start of the step's
second attempt, as the step itself records it (same host, same clock). Never part of
the test suite: timings depend on the machine and its load.

    python -m bench.recovery [--rounds 5] [--only child,worker,message] [--redispatch-after 30]
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


def one_round(fault: str, work: Path, redispatch_after: float = 30.0) -> float:
    """Seconds from the fault to the step's (next) start, for one fault."""
    server = EmbeddedRedis(work / "redis")
    url = server.start()
    processes, concurrency = {"child": (1, 2), "worker": (2, 1), "message": (1, 1)}[fault]
    queue = f"rec-{uuid.uuid4().hex[:8]}"
    env = {"ORCH_REDISPATCH_AFTER": f"{redispatch_after:g}"}
    pool = WorkerPool(url, log_dir=work / "logs", env=env)
    client = Client(url, settings=Settings(redis_url=url))
    r = redis.Redis.from_url(url)
    try:
        pool.start([queue], concurrency=concurrency, processes=processes)
        if fault == "message":
            return _lost_message(client, r, queue)
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


def _lost_message(client: Client, r: redis.Redis, queue: str) -> float:
    busy = Flow(f"busy-{uuid.uuid4().hex[:8]}", 1)
    busy.step("s", "bench.steps:watched", queue=queue)
    blocker = client.submit(busy.build(), {"seconds": 1.0})
    _wait_start(r, blocker.id, 1, 30)  # the one worker process is taken
    flow = Flow(f"rec-{uuid.uuid4().hex[:8]}", 1)
    flow.step("s", "bench.steps:watched", queue=queue)
    run = client.submit(flow.build(), {"seconds": 0.0})
    (message,) = [m for m in r.lrange(queue, 0, -1) if run.id.encode() in m]
    r.lrem(queue, 1, message)
    lost_at = float(json.loads(r.lindex(f"orch:run:{run.id}:events", 0) or b"{}")["t"])
    start = _wait_start(r, run.id, 1, 120)
    run.wait(timeout=30)
    return float(start["t"]) - lost_at


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="child,worker")
    p.add_argument("--redispatch-after", type=float, default=30.0)
    args = p.parse_args(argv)
    lease = Settings().lease_seconds
    print(f"lease {lease:g}s, redispatch after {args.redispatch_after:g}s, "
          f"{args.rounds} rounds per fault")  # fmt: skip
    for fault in args.only.split(","):
        times = []
        for k in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="orch-recovery-") as tmp:
                times.append(one_round(fault, Path(tmp) / str(k), args.redispatch_after))
        print(
            f"{fault:7s} fault -> step runs (again): median {statistics.median(times):.2f}s, "
            f"min {min(times):.2f}s, max {max(times):.2f}s  "
            f"({', '.join(f'{t:.2f}' for t in times)})"
        )


if __name__ == "__main__":
    main()
