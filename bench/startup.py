"""``python -m bench.startup``: how long the everyday ``orch`` commands take to start.

A user feels the CLI's start-up on every command, so it is measured the way a
user meets it: ``orch`` run as a fresh process, end to end, against a private
Redis that holds one run (so ``orch status RUN`` and ``orch runs`` do their
real work). The commands run in interleaved rounds (one of each per round,
after one warm-up round), so a shared machine's changing load weighs on all
of them alike; the median and the fastest run are shown. ``--hyperfine``
hands the same commands to hyperfine instead, if it is on PATH.

``--compare DIR`` also runs every ``orch`` command from another source tree
(an older checkout, say ``git archive <commit> | tar -x -C DIR``) in the same
rounds, through ``PYTHONPATH``, so before and after meet the same load. The
``floor`` row imports only the libraries every command needs (Typer, Rich,
hiredis, which the read-only commands read Redis with: orchestrator/leanredis.py;
pydantic-settings only when an ``ORCH_*`` variable needs checking, see
orchestrator/settings.py): what is left once the orchestrator's own imports
are out of the way.

    python -m bench.startup [--runs 15] [--hyperfine] [--compare DIR]

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
        "orch status RUN --json": [orch, "status", run_id, "--json"],
        "import orchestrator": [sys.executable, "-c", "import orchestrator"],
        "celery --help": [sys.executable, "-m", "celery", "--help"],
        "floor: typer+rich+hiredis": [sys.executable, "-c", FLOOR],
        "python -c pass": [sys.executable, "-c", "pass"],
    }


#: What a read-only command imports before its own code: Typer, Rich's console and table,
#: and hiredis (LeanRedis's parser; no redis-py).
FLOOR = "import typer, rich.console, rich.table, hiredis"


def _with_path(argv: list[str], tree: Path) -> list[str]:
    """``argv`` run with ``tree`` first on the import path (env is set by the caller)."""
    return ["env", f"PYTHONPATH={tree}", *argv]


def _time_once(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False, cwd=cwd)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()}")
    return elapsed


def measure(
    cmds: dict[str, list[str]], env: dict[str, str], runs: int, cwd: Path
) -> dict[str, list[float]]:
    """Seconds per run of each command, over ``runs`` interleaved rounds after a warm-up.

    They run in ``cwd``, a folder of no project, as a user's would: no checkout
    lands on ``sys.path`` by accident (``python -c`` puts the working directory first).
    """
    for argv in cmds.values():
        _time_once(argv, env, cwd)
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(runs):
        for label, argv in cmds.items():
            times[label].append(_time_once(argv, env, cwd))
    return times


def _hyperfine(cmds: dict[str, list[str]], env: dict[str, str], runs: int, cwd: Path) -> None:
    argv = ["hyperfine", "--warmup", "2", "--runs", str(runs), "-N"]
    for label, cmd in cmds.items():
        argv += ["--command-name", label, shlex.join(cmd)]
    subprocess.run(argv, env=env, check=True, cwd=cwd)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=15, help="timed runs per command")
    p.add_argument("--hyperfine", action="store_true", help="measure with hyperfine")
    p.add_argument("--compare", type=Path, default=None, help="another source tree to time too")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="orch-startup-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        url = server.start()
        try:
            wf = Flow("startup-bench", 1, input={}).step("a", "bench.steps:noop").build()
            with Client(url) as client:
                run_id = client.submit(wf, {}).id
            # Bytecode caches as a user has them: pip writes them for an install, and Python
            # for a checkout, unless PYTHONDONTWRITEBYTECODE says not to (the warm-up writes them).
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["ORCH_REDIS_URL"] = url
            cmds = commands(run_id)
            if args.compare is not None:
                tree = args.compare.resolve()
                for label in [k for k in cmds if k.startswith(("orch", "import"))]:
                    cmds[f"{label} [{tree.name}]"] = _with_path(cmds[label], tree)
            if args.hyperfine and shutil.which("hyperfine"):
                _hyperfine(cmds, env, args.runs, Path(tmp))
                return
            print(f"{'command':<40} {'median':>9} {'min':>9}   ({args.runs} rounds)")
            for label, times in measure(cmds, env, args.runs, Path(tmp)).items():
                median, fastest = statistics.median(times), min(times)
                print(f"{label:<40} {median * 1000:>6.0f} ms {fastest * 1000:>6.0f} ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
