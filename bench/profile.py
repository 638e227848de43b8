"""``python -m bench.profile``: where one side's time per step goes, under sustained load.

The benchmark says *whether* the orchestrator is faster; this says *why not*
when it is not. It runs one workload (scenario a's chains, b's fan-outs, or the
bare Celery floor)
for a fixed time on one side and reports, per step:

- Redis: time of each Lua script (SLOWLOG with a 0 µs threshold, so every
  command is logged with its duration) and of each plain command;
- CPU seconds of Redis, the worker processes and the client (from /proc);
- with ``--py-spy``: a sampling profile of the worker processes (main process
  and prefork children), as inclusive and self time per function.

SLOWLOG and py-spy both slow things down a little; the per-step numbers are
for comparing where time goes, not for quoting as throughput.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Harness
from bench.report import fmt
from bench.rounds import warm
from bench.workloads import chain_flow, fan_flow, orch_batch, plain_batch, plain_chain, plain_chord


def _floor(h: Harness, n: int = 1000) -> int:
    """Bare Celery: ``n`` no-op messages, no result backend, until the queue has drained.

    This is what any design that runs one Celery task per step pays at least,
    whatever it does around the task: the worker's own receive, ack and pool
    hand-off.
    """
    for _ in range(n):
        h.plain_app.send_task("bench.noop", queue="plain", ignore_result=True)
    while h.r.llen("plain") or h.r.hlen("unacked"):
        time.sleep(0.002)
    return n


def _workload(h: Harness, side: str, shape: str) -> tuple[Callable[[], int], Callable[[], None]]:
    """A batch runner returning its step count, and a warm-up."""
    app = h.plain_app
    if shape == "floor":
        return (lambda: _floor(h)), (lambda: None)
    wf = chain_flow(10) if shape == "chain" else fan_flow(100)
    make = (lambda: plain_chain(app)) if shape == "chain" else (lambda: plain_chord(app))
    runs = 50 if shape == "chain" else 5
    steps = {"chain": 10, "fan": 102 if side == "orch" else 101}[shape]

    def batch() -> int:
        if side == "orch":
            orch_batch(h.client, wf, runs, {})
        else:
            plain_batch(make, runs)
        return runs * steps

    return batch, lambda: warm(h, wf, make, {})


def _script_names(h: Harness) -> dict[str, str]:
    return h.client.store.engine.scripts.shas()


def slowlog_summary(
    entries: list[dict[str, Any]], names: dict[str, str], steps: int
) -> list[tuple[str, float, float, float, float]]:
    """(what, calls per step, µs per call p50, mean, µs per step), most expensive first.

    The median is the one to quote on a busy machine: a script preempted by
    the OS mid-run logs the preemption as its own duration.
    """
    durations: defaultdict[str, list[int]] = defaultdict(list)
    for e in entries:
        raw = e["command"]
        args = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).split()
        if not args:
            continue
        cmd = args[0].lower()
        if cmd in ("slowlog", "info", "config"):
            continue
        what = f"evalsha {names.get(args[1], args[1][:8])}" if cmd == "evalsha" else cmd
        durations[what].append(int(e["duration"]))
    rows = [
        (w, len(d) / steps, float(statistics.median(d)), sum(d) / len(d), sum(d) / steps)
        for w, d in durations.items()
    ]
    return sorted(rows, key=lambda r: -r[4])


def py_spy_summary(
    raw: Path, top: int = 25
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """Inclusive and self sample counts per function from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_func(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    return inclusive.most_common(top), own.most_common(top), total


def _func(frame: str) -> str:
    """``name (path/to/file.py:123)`` → ``name (file.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("--side", choices=["orch", "plain"], default="orch")
    p.add_argument(
        "--workload",
        choices=["chain", "fan", "floor"],
        default="chain",
        help="floor: bare Celery no-op tasks without a result backend (plain side only)",
    )
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--py-spy", action="store_true", help="sample the worker processes")
    args = p.parse_args(argv)
    if args.workload == "floor":
        args.side = "plain"
    workdir = Path(tempfile.mkdtemp(prefix="orch-profile-"))
    h = Harness(workdir)
    spy: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        h.start()
        batch, warmup = _workload(h, args.side, args.workload)
        warmup()
        names = _script_names(h)
        h.r.config_set("slowlog-log-slower-than", 0)
        h.r.config_set("slowlog-max-len", 1_000_000)
        h.r.slowlog_reset()
        if args.py_spy:
            workers = h.pool.workers if (args.side == "orch" and h.pool) else h.plain_workers
            for w in workers:
                spy.append(_spy(w.pid, "main", workdir, args.seconds))
                spy += [_spy(pid, "child", workdir, args.seconds) for pid in w.child_pids()]
        c0, t0 = h.cpu(), time.perf_counter()
        steps = 0
        while time.perf_counter() - t0 < args.seconds:
            steps += batch()
        wall = time.perf_counter() - t0
        c1 = h.cpu()
        entries = h.r.slowlog_get(1_000_000)
        h.r.config_set("slowlog-log-slower-than", 10000)
        for proc, _ in spy:
            proc.wait(args.seconds + 30)
        _print(args, steps, wall, {k: c1[k] - c0[k] for k in c1}, entries, names, spy)
    finally:
        for proc, _ in spy:
            if proc.poll() is None:
                proc.terminate()
        h.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _spy(
    pid: int, role: str, workdir: Path, seconds: float
) -> tuple[subprocess.Popen[bytes], Path]:
    """Sample one process (not its children: each role is reported on its own)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = workdir / f"spy-{role}-{pid}.txt"
    cmd = [exe, "record", "--pid", str(pid), "--nonblocking", "--format", "raw"]
    cmd += ["-r", "200", "-d", str(int(seconds)), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def _print(
    args: argparse.Namespace,
    steps: int,
    wall: float,
    cpu: dict[str, float],
    entries: list[dict[str, Any]],
    names: dict[str, str],
    spy: list[tuple[subprocess.Popen[bytes], Path]],
) -> None:
    print(
        f"{args.side} / {args.workload}: {steps} steps in {wall:.1f} s = {steps / wall:.0f} steps/s"
    )
    workers = "orch_workers" if args.side == "orch" else "plain_workers"
    for k in ("redis", workers, "client"):
        print(f"  CPU {k:>13}: {cpu[k] * 1000 / steps:.3f} ms/step")
    print(f"\nRedis, per step (SLOWLOG at 0 µs; {len(entries)} entries):")
    print(f"  {'command':<22}{'calls/step':>11}{'µs p50':>8}{'µs mean':>9}{'µs/step':>9}")
    for what, calls, p50, mean, per_step in slowlog_summary(entries, names, steps)[:16]:
        print(f"  {what:<22}{calls:>11.2f}{p50:>8.0f}{mean:>9.1f}{per_step:>9.1f}")
    rate = 200 * args.seconds  # samples a fully busy thread would give
    for _, out in spy:
        if not out.exists():
            print(f"\npy-spy wrote nothing to {out} (is ptrace allowed?)")
            continue
        inclusive, own, total = py_spy_summary(out, top=60)
        print(f"\npy-spy {out.name}: {total} samples, ~{100 * total / rate:.0f}% of one core busy")
        print("  inclusive (frames below the common worker loop):")
        shown = 0
        for f, n in inclusive:
            if n < 0.9 * total and shown < 22:
                print(f"    {fmt(100 * n / total):>6}%  {f}")
                shown += 1
        print("  self:")
        for f, n in own[:12]:
            print(f"    {fmt(100 * n / total):>6}%  {f}")


if __name__ == "__main__":
    sys.exit(main())
