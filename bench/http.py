"""Scenario http: submits through the HTTP API (``orch serve``, one uvicorn worker), driven
by ApacheBench (``ab``, Debian's apache2-utils), against the same submits made in-process.

The server is its own process, as in production, on the harness's Redis; the
workflow is registered first and named in the body (``{"workflow": "bench-single"}``),
and its one step goes to a queue no worker consumes, so the API is timed alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.harness import Harness
from bench.report import ScenarioResult, Target
from bench.rounds import Ctx, ab
from bench.scenarios import SINK, _drop_orch_runs
from bench.workloads import single_flow

REQUESTS = 20_000
QUICK_REQUESTS = 3_000
CONCURRENCY = 32


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(h: Harness, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ORCH_REDIS_URL": h.url}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"orch serve did not start; see {log}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ab(url: str, body: Path, requests: int) -> tuple[float, int]:
    """(requests per second, failed or non-2xx requests) of one ab run."""
    out = subprocess.run(
        ["ab", "-q", "-k", "-n", str(requests), "-c", str(CONCURRENCY), "-p", str(body),
         "-T", "application/json", url],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return rps, failed + (int(non2xx.group(1)) if non2xx else 0)


def scenario_http(ctx: Ctx) -> ScenarioResult:
    h = ctx.h
    n = QUICK_REQUESTS if ctx.sizes.e_submits < 2000 else REQUESTS
    res = ScenarioResult(
        "http", f"HTTP submit throughput: {n:,} POST /api/runs, ab -c {CONCURRENCY}"
    )
    if shutil.which("ab") is None:
        res.notes.append("not measured: `ab` is missing (apt-get install apache2-utils)")
        return res
    ctx.default_workers()
    wf = single_flow(SINK)
    h.client.submit(wf, {})  # registers the workflow outside the timing
    body = h.workdir / "submit.json"
    body.write_text(json.dumps({"workflow": wf.name, "input": {}}))
    port = _free_port()
    server = _start_server(h, port, h.workdir / "serve.log")
    bad: list[int] = []
    cpu_us: list[float] = []

    def http_side() -> float:
        before = h.r.zcard(h.client.keys.runs)
        cpu0 = _cpu_seconds(server.pid)
        rps, failed = _ab(f"http://127.0.0.1:{port}/api/runs", body, n)
        cpu_us.append((_cpu_seconds(server.pid) - cpu0) / n * 1e6)
        made = h.r.zcard(h.client.keys.runs) - before
        bad.append(failed + abs(made - n))
        _drop_orch_runs(h, [i for i in h.r.zrevrange(h.client.keys.runs, 0, made - 1)])
        return rps

    def in_process() -> float:
        t0 = time.perf_counter()
        runs = [h.client.submit(wf.name, {}) for _ in range(n // 4)]
        wall = time.perf_counter() - t0
        _drop_orch_runs(h, [r.id for r in runs])
        return len(runs) / wall

    try:
        _ab(f"http://127.0.0.1:{port}/api/runs", body, 500)  # warm-up, untimed
        o, p = ab(ctx, http_side, in_process)
    finally:
        server.terminate()
        server.wait(timeout=15)
    res.metric(
        "runs accepted per second over HTTP",
        "runs/s",
        "higher",
        orch=o,
        plain=p,
        target=Target("orch", ">=", 1000, "runs/s"),
    )
    res.metric("server CPU per HTTP submit", "µs", "lower", orch=cpu_us)
    res.details["refused_or_lost"] = bad
    res.details["load_average"] = os.getloadavg()
    res.notes.append(
        "orch = POST /api/runs through `orch serve` (one uvicorn worker, its own process) "
        f"driven by ab -k -c {CONCURRENCY}; the 'plain' column here is the same submit made "
        "in-process with client.submit(name), one producer thread: the ratio is what HTTP costs. "
        "Every request is checked: refused_or_lost counts failed or non-2xx requests and runs "
        "missing from Redis. Server CPU per submit is the uvicorn process's user+system time "
        "over the requests: 1e6 / it is what one uncontended core could serve, whatever else "
        "the machine runs."
    )
    return res
