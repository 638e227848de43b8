"""Running ``orch`` as a user does, and checking which processes it leaves behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

#: The ``orch`` console script of this environment. Unlike ``python -m orchestrator``
#: it does not put the working directory on sys.path by itself.
ORCH_SCRIPT = str(Path(sys.executable).with_name("orch"))


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no ORCH_* settings, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_") and k != "PYTHONPATH"}
    return {**env, **extra}


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


def kill_all(pids: set[int]) -> None:
    """Clean-up after a failed test: nothing it started may outlive it."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def shutdown_redis(port: int) -> None:
    conn = redis.Redis(port=port, socket_connect_timeout=1)
    with contextlib.suppress(redis.RedisError):
        conn.shutdown(nosave=True)
    conn.close()


@contextlib.contextmanager
def background(
    argv: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running command, its output in ``log``; killed with its children if left."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            kill_all(descendants(proc.pid) | {proc.pid})
            proc.wait(10)


def ready_dev(proc: subprocess.Popen[bytes], data_dir: Path, log: Path) -> int:
    """Wait until ``orch dev`` runs Redis and a worker; returns the Redis port."""

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        return "Ctrl-C" in log.read_text()

    wait_until(up, 90, "orch dev is ready")
    import json

    return int(json.loads((data_dir / "redis.json").read_text())["port"])
