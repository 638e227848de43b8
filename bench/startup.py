"""``python -m bench.startup``: how long the everyday ``orch`` commands take to start.

A user feels the CLI's start-up on every command, so it is measured the way a
user meets it: ``orch`` run as a fresh process, end to end, against a private
Redis that holds one run (so ``orch status RUN`` and ``orch runs`` do their
real work). With ``hyperfine`` on PATH it is used (``--hyperfine``); otherwise
each command runs ``--runs`` times after one warm-up and the median is shown.

    python -m bench.startup [--runs 15] [--hyperfine]

Never part of the test suite: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import Client, Flow
from orchestrator.embedded import EmbeddedRedis


def _orch() -> str:
    """The ``orch`` script of this interpreter's environment."""
    found = Path(sys.executable).with_name("orch")
    return str(found) if found.exists() else "orch"


def commands(run_id: str) -> dict[str, list[str]]:
    orch = _orch()
    return {
        "orch --help": [orch, "--help"],
        "orch status RUN": [orch, "status", run_id],
        "orch runs": [orch, "runs"],
        "import orchestrator": [sys.executable, "-c", "import orchestrator"],
        "celery --help": [sys.executable, "-m", "celery", "--help"],
    }


def _time_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median, min) seconds over ``runs`` runs after one warm-up."""
    _time_once(argv, env)
    times = [_time_once(argv, env) for _ in range(runs)]
    return statistics.median(times), min(times)


def _hyperfine(cmds: dict[str, list[str]], env: dict[str, str], runs: int) -> None:
    argv = ["hyperfine", "--warmup", "2", "--runs", str(runs), "-N"]
    for label, cmd in cmds.items():
        argv += ["--command-name", label, shlex.join(cmd)]
    subprocess.run(argv, env=env, check=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=15, help="timed runs per command")
    p.add_argument("--hyperfine", action="store_true", help="measure with hyperfine")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="orch-startup-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        url = server.start()
        try:
            wf = Flow("startup-bench", 1).step("a", "bench.steps:noop").build()
            with Client(url) as client:
                run_id = client.submit(wf, {}).id
            env = {**os.environ, "ORCH_REDIS_URL": url}
            cmds = commands(run_id)
            if args.hyperfine and shutil.which("hyperfine"):
                _hyperfine(cmds, env, args.runs)
                return
            print(f"{'command':<22} {'median':>9} {'min':>9}   ({args.runs} runs each)")
            for label, cmd in cmds.items():
                median, fastest = measure(cmd, env, args.runs)
                print(f"{label:<22} {median * 1000:>6.0f} ms {fastest * 1000:>6.0f} ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
