"""``python -m bench``: the orchestrator against plain Celery, in the same run.

Both sides run on one private Redis with the same worker settings, in
alternating rounds, so their ratio is meaningful on whatever machine this
runs on; absolute numbers are not comparable across machines, ratios are
more nearly so. Results go to one Rich table and one JSON file.

    python -m bench [--quick] [--only a,b,...] [--rounds N] [--out bench/results]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from rich.console import Console

from bench.costs import scenario_f, scenario_g, scenario_h
from bench.harness import Harness
from bench.http import scenario_http
from bench.queueing import scenario_q
from bench.report import ScenarioResult, render, write_json
from bench.rounds import QUICK, Ctx, Sizes
from bench.scenarios import (
    scenario_a,
    scenario_b,
    scenario_c,
    scenario_d,
    scenario_e,
)
from bench.telemetry import scenario_t

SCENARIOS: dict[str, Callable[[Ctx], ScenarioResult]] = {
    "a": scenario_a,
    "b": scenario_b,
    "c": scenario_c,
    "d": scenario_d,
    "e": scenario_e,
    "f": scenario_f,
    "g": scenario_g,
    "t": scenario_t,
    "q": scenario_q,
    "http": scenario_http,
    "h": scenario_h,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round, smaller sizes (< 2 min)")
    p.add_argument("--only", default="", help="comma-separated scenarios, e.g. a,b,f")
    p.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 3, quick 1)")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="JSON directory")
    p.add_argument("--concurrency", type=int, default=2, help="prefork children per worker")
    p.add_argument("--keep", action="store_true", help="keep the work dir (Redis, worker logs)")
    args = p.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {','.join(unknown)}; choose from {','.join(SCENARIOS)}")
    # Canonical order: h restarts the workers, so it goes last whatever was asked.
    args.selected = [s for s in SCENARIOS if s in chosen]
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops and cleans up even when started with SIGINT ignored, as a non-interactive
    # shell starts a background job (`nohup make bench &`): Python keeps an inherited ignore.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sizes: Sizes = replace(QUICK) if args.quick else Sizes()
    workdir = Path(tempfile.mkdtemp(prefix="orch-bench-"))
    harness = Harness(workdir, concurrency=args.concurrency)
    results: list[ScenarioResult] = []
    started = time.monotonic()
    stamp = datetime.now(UTC)
    ok = False
    try:
        console.log(f"starting Redis and workers in {workdir}")
        harness.start()
        ctx = Ctx(
            harness,
            rounds=args.rounds,
            sizes=sizes,
            concurrency=args.concurrency,
            log=console.log,
        )
        for key in args.selected:
            console.log(f"scenario {key} …")
            t0 = time.monotonic()
            res = SCENARIOS[key](ctx)
            res.seconds = time.monotonic() - t0
            console.log(f"scenario {key} done in {res.seconds:.1f} s")
            results.append(res)
        ok = True
    except KeyboardInterrupt:
        console.log("[yellow]interrupted; stopping workers and Redis[/yellow]")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        harness.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            console.log(f"worker logs kept in {workdir / 'logs'}")
    elapsed = time.monotonic() - started
    mode = "quick" if args.quick else "full"
    out = args.out / f"{stamp.strftime('%Y%m%d-%H%M%S')}.json"
    meta = {
        "started_at": stamp.isoformat(),
        "seconds": elapsed,
        "mode": mode,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "selected": args.selected,
        "sizes": vars(sizes),
    }
    write_json(out, results, machine=harness.machine, meta=meta)
    machine = harness.machine
    title = (
        f"orchestrator vs plain Celery — {mode}, {args.rounds} round(s), "
        f"{machine.get('cpu_count')} × {machine.get('cpu_model')}, redis "
        f"{machine.get('redis')}, celery {machine.get('celery')}, {elapsed:.0f} s"
    )
    render(results, Console(width=max(200, Console().width)), title=title)
    print(f"results: {out}")
    failed = [m for r in results for m in r.metrics if m.passed is False]
    if failed:
        print(
            f"{len(failed)} target(s) missed: "
            + "; ".join(f"{m.scenario} {m.name}" for m in failed)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
