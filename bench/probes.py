"""Probes the scenarios read: CPU time from /proc, commandstats deltas, memory, MONITOR.

They observe; they start nothing. Each says what it counts, because the
numbers only mean something with that said (commandstats counts commands a
Lua script runs; MONITOR tells them apart from the ones clients send).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import redis

from workers.pool import WorkerProcess

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def workers_cpu(workers: list[WorkerProcess]) -> float:
    """CPU seconds of worker main processes and their prefork children."""
    return sum(proc_cpu(p) for w in workers for p in [w.pid, *w.child_pids()])


def stats_delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    out = {}
    for cmd, (calls, usec) in after.items():
        c0, u0 = before.get(cmd, (0, 0))
        if calls - c0:
            out[cmd] = (calls - c0, usec - u0)
    return out


class MemorySampler:
    """Samples ``used_memory`` every few milliseconds in a thread; keeps the peak."""

    def __init__(self, url: str, every: float = 0.005) -> None:
        self.url = url
        self.every = every
        self.baseline = 0
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mem-sampler", daemon=True)

    def _loop(self) -> None:
        r = redis.Redis.from_url(self.url)
        try:
            while not self._stop.is_set():
                self.peak = max(self.peak, int(r.info("memory")["used_memory"]))
                self.samples += 1
                self._stop.wait(self.every)
        finally:
            r.close()

    def __enter__(self) -> MemorySampler:
        r = redis.Redis.from_url(self.url)
        self.baseline = self.peak = int(r.info("memory")["used_memory"])
        r.close()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Monitor:
    """A MONITOR tap: counts commands by where they came from (a client, or Lua).

    Commands a script runs cost Redis time but no network hop; client commands
    do, except that a MULTI … EXEC block travels as one pipeline, so it is
    counted as one round trip (plain pipelines cannot be told apart here).
    MONITOR slows Redis down, so only a small, idle sample is taken with it,
    never a timed run.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.client_cmds: Counter[str] = Counter()
        self.lua_cmds: Counter[str] = Counter()
        self.round_trips = 0
        self._in_tx: set[str] = set()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)

    def _loop(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.settimeout(0.1)
            sock.sendall(b"MONITOR\r\n")
            buf = b""
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(1 << 16)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\r\n")
                for line in lines:
                    self._count(line.decode("utf-8", "replace"))

    def _count(self, line: str) -> None:
        if line == "+OK":
            self._ready.set()
            return
        head, _, rest = line.partition("] ")
        if not rest:
            return
        cmd = rest.split(" ", 1)[0].strip('"').lower()
        if head.endswith(" lua"):
            self.lua_cmds[cmd] += 1
            return
        self.client_cmds[cmd] += 1
        # A MULTI … EXEC block is sent as one pipeline: one round trip, not several.
        source = head.rsplit(" ", 1)[-1]
        if cmd == "multi":
            self._in_tx.add(source)
            self.round_trips += 1
        elif cmd in ("exec", "discard"):
            self._in_tx.discard(source)
        elif source not in self._in_tx:
            self.round_trips += 1

    def __enter__(self) -> Monitor:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)  # let the last replies arrive
        self._stop.set()
        self._thread.join(5)
