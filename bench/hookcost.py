"""``python -m bench.hookcost``: what hooks and OpenTelemetry cost a worker, part by part.

Scenario t gives one ratio for all of telemetry; this splits it. Each
configuration runs in a process of its own (the SDK is set up once per
process), which drives the real ``StepRuntime.execute`` on 10-step chains
against a private Redis, with no Celery: one call runs a whole chain, its
runner lane taking each next step. What is reported per step is that
process's CPU over all its threads (the SDK's export threads included) and
Redis's. The configurations add one part at a time:

- ``none``: no hooks;
- ``hook``: one hook that does nothing, so the engine reports its decisions
  (the scripts return them, the worker parses them and builds the events);
- ``otel-unsampled``: the OpenTelemetry hooks, no span sampled, no export;
- ``otel-recorded``: spans recorded, nothing exported;
- ``otel-spans``: spans exported (OTLP/HTTP to a receiver in another
  process), metrics not;
- ``otel-all``: spans and metrics (every second) exported, as scenario t;
- ``otel-1in10``: as ``otel-all``, one run in ten traced
  (``parentbased_traceidratio``).

Rounds are interleaved, so a changing machine load falls on every
configuration alike; the median and the least of the rounds are shown
(``vs none`` compares the least). Never part of the
test suite's timings: the smoke test only checks that it runs.

On a shared VM the CPU figures move by tens of µs from run to run.
``--instructions`` counts instead: each child runs under valgrind
(cachegrind, no cache simulation) twice, with ``runs`` and three times as
many chains, and the difference in instructions, divided by the steps
between them, is what one step costs with start-up and warm-up cancelled.
It is the same from run to run to a few hundred instructions, so a change
worth 1 % shows. Instructions are not time (the SDK's protobuf encoding
retires more of them per µs than the engine's Python), and valgrind runs
about 50 times slower, so a counted child exports nothing on the clock:
spans when a batch of 512 fills, metrics only at exit (``COUNTED_EXPORT``).

    python -m bench.hookcost [--runs 100] [--rounds 3] [--only none,hook] [--instructions]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXPORT = {
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_SERVICE_NAME": "bench-hookcost",
}
NOTHING = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
#: Each configuration: its hooks ("", "noop" or "otel") and its OTEL_* variables.
CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "none": ("", {}),
    "hook": ("noop", {}),
    "otel-unsampled": ("otel", {**NOTHING, "OTEL_TRACES_SAMPLER": "always_off"}),
    "otel-recorded": ("otel", NOTHING),
    "otel-spans": ("otel", {"OTEL_METRICS_EXPORTER": "none"}),
    "otel-all": ("otel", {}),
    "otel-1in10": (
        "otel",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    ),
}
STEPS = 10
#: Untimed chains each child runs first.
WARM = 20
#: Untimed chains of a counted child: the difference of two counts cancels warm-up anyway.
COUNTED_WARM = 5
#: A counted child exports only when a batch fills and at exit: no export on the clock,
#: which under valgrind would come about 50 times as often per step.
COUNTED_EXPORT = {"OTEL_METRIC_EXPORT_INTERVAL": "86400000", "OTEL_BSP_SCHEDULE_DELAY": "86400000"}
#: The configurations that export a span per attempt and per run, of every run.
TRACED = ("otel-spans", "otel-all")


def child(config: str, url: str, runs: int, warm: int = WARM) -> dict[str, Any]:
    """Run ``runs`` chains (after ``warm`` untimed) with ``config``'s hooks; CPU per step."""
    import redis  # the child alone needs the stack

    from bench.workloads import chain_flow
    from orchestrator import Client
    from orchestrator.hooks import HookChain, Hooks
    from orchestrator.keys import Keys
    from orchestrator.messages import priority_lists
    from orchestrator.store import Observe, RunStore
    from workers.runtime import StepRuntime

    class Noop(Hooks):
        def on_attempt_finished(self, event: object) -> None:
            """Listens, so that the engine reports; does nothing."""

    kind = CONFIGS[config][0]
    hooks: list[object] = [Noop()] if kind == "noop" else []
    if kind == "otel":
        from orchestrator.telemetry import OpenTelemetry

        hooks = [OpenTelemetry()]
    chain = HookChain(hooks)
    queue = f"hookcost-{os.getpid()}"
    wf = chain_flow(STEPS, name=f"{queue}-", queue=queue)
    client = Client(url, hooks=hooks)  # submits carry the run's trace, as a producer's do
    r = redis.Redis.from_url(url)
    store = RunStore(
        r,
        Keys(client.settings.key_prefix),
        run_ttl=600,
        max_payload=1 << 20,
        observe=Observe.EVENTS if chain else Observe.NOTHING,
    )
    runtime = StepRuntime(store, runner_slice=5.0, hooks=chain)

    def redis_cpu() -> float:
        found = r.info("cpu")
        return float(found["used_cpu_user"]) + float(found["used_cpu_sys"])

    def batch(n: int) -> tuple[float, float]:
        ids = [client.submit(wf, {}).id for _ in range(n)]
        r.delete(*priority_lists(queue))  # their first steps' messages: run here instead
        cpu, server = time.process_time(), redis_cpu()
        for run_id in ids:
            runtime.execute(run_id, wf.ref, "s0", None, "hookcost@here")
        cpu, server = time.process_time() - cpu, redis_cpu() - server
        unfinished = [i for i in ids if client.run(i).state() != "SUCCEEDED"]
        if unfinished:
            raise SystemExit(f"{config}: {len(unfinished)} chains did not succeed")
        return cpu / (n * STEPS) * 1e6, server / (n * STEPS) * 1e6

    batch(warm)
    python_us, redis_us = batch(runs)
    if kind == "otel":
        from orchestrator.telemetry import sdk

        sdk.shutdown()
    return {"config": config, "python_us": python_us, "redis_us": redis_us}


#: How valgrind runs a child for ``--instructions``: instructions counted, nothing simulated.
VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _run_child(
    config: str, url: str, sink: str, runs: int, *, counted: bool = False
) -> dict[str, Any]:
    """One child's figures; ``counted``: run under valgrind, adding its ``instructions``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ORCH_HOOKS"))}
    env.update(EXPORT, OTEL_EXPORTER_OTLP_ENDPOINT=sink, **CONFIGS[config][1])
    argv = [sys.executable, "-m", "bench.hookcost", "--child", config, "--url", url]
    if counted:
        env.update(COUNTED_EXPORT, PYTHONHASHSEED="0")
        argv = [*VALGRIND, *argv, "--warm", str(COUNTED_WARM)]
    proc = subprocess.run(
        [*argv, "--runs", str(runs)], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{config} failed: {proc.stderr.strip().splitlines()[-1:]}")
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if counted:
        irefs = _IREFS.search(proc.stderr)
        if irefs is None:
            raise SystemExit(f"{config}: valgrind printed no instruction count")
        found["instructions"] = int(irefs.group(1).replace(",", ""))
    return found


def _instructions(config: str, url: str, sink: str, runs: int) -> float:
    """Instructions per step: two counted children, ``runs`` and ``3 * runs`` chains."""
    low = _run_child(config, url, sink, runs, counted=True)["instructions"]
    high = _run_child(config, url, sink, 3 * runs, counted=True)["instructions"]
    return float(high - low) / (2 * runs * STEPS)


#: The OTLP receiver: says its endpoint, then, once its input closes, how many spans it got.
SINK = """import sys
from bench.otlp import OtlpSink
with OtlpSink(keep=False) as s:
    print(s.endpoint, flush=True)
    sys.stdin.read()
    print(s.span_count, flush=True)
"""


def _sink() -> tuple[subprocess.Popen[str], str]:
    """The OTLP receiver, in a process of its own so that its CPU is not counted."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _spans_received(sink: subprocess.Popen[str]) -> int:
    out, _ = sink.communicate(timeout=30)
    return int(out.strip() or 0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hookcost", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=100, help="timed chains per configuration")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default=",".join(CONFIGS), help="comma-separated configurations")
    p.add_argument(
        "--instructions", action="store_true", help="count instructions per step under valgrind"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--warm", type=int, default=WARM, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.url, args.runs, args.warm)))
        return 0
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CONFIGS]
    if unknown:
        p.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    from orchestrator.embedded import EmbeddedRedis

    results: dict[str, list[dict[str, Any]]] = {c: [] for c in chosen}
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="orch-hookcost-") as tmp:
        sink, endpoint = _sink()
        try:
            with EmbeddedRedis(Path(tmp)) as server:
                if args.instructions:
                    counts = {c: _instructions(c, server.url, endpoint, args.runs) for c in chosen}
                else:
                    for _ in range(args.rounds):
                        for config in chosen:
                            found = _run_child(config, server.url, endpoint, args.runs)
                            results[config].append(found)
            received = _spans_received(sink)
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait(10)
    if args.instructions:
        _print_counts(counts, args.runs)
        return 0
    _print(results, args.runs, args.rounds)
    every = sum(1 for c in chosen if c in TRACED) * args.rounds * (args.runs + WARM) * (STEPS + 1)
    print(f"spans received: {received}; {every} from the configurations that trace every run")
    return 0


def _print_counts(counts: dict[str, float], runs: int) -> None:
    base = counts.get("none")
    print(f"instructions per step (valgrind), {runs} and {3 * runs} {STEPS}-step chains")
    print(f"{'configuration':<16} {'per step':>10} {'vs none':>10}")
    for config, count in counts.items():
        extra = f"{count - base:+10.0f}" if base is not None else f"{'':>10}"
        print(f"{config:<16} {count:10.0f} {extra}")


def _print(results: dict[str, list[dict[str, Any]]], runs: int, rounds: int) -> None:
    """Median and least of the rounds: interference only ever adds CPU, so the least is
    the steadiest figure on a shared machine."""
    none = results.get("none")
    base = min(r["python_us"] for r in none) if none else None
    print(f"CPU per step, µs, over {rounds} rounds of {runs} {STEPS}-step chains")
    print(f"{'configuration':<16} {'median':>7} {'least':>7} {'vs none':>8} {'Redis':>7}")
    for config, found in results.items():
        python_us = [r["python_us"] for r in found]
        redis_us = statistics.median(r["redis_us"] for r in found)
        extra = f"{min(python_us) - base:+8.0f}" if base is not None else f"{'':>8}"
        row = f"{statistics.median(python_us):7.0f} {min(python_us):7.0f} {extra} {redis_us:7.0f}"
        print(f"{config:<16} {row}")


if __name__ == "__main__":
    sys.exit(main())
