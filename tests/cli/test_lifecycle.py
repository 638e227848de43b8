"""Every way of stopping ``orch dev`` and ``orch flower`` stops what they started.

Real processes: the test sends the signal a service manager or a closed
terminal would, then checks that no process the command started is left
(they used to live on with parent PID 1) and that the ports are closed. A
server left behind anyway (its owner SIGKILLed) is named for what it is.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestrator.embedded import EmbeddedRedis, find_server, free_port
from tests.cli.procs import (
    ORCH_SCRIPT,
    alive,
    background,
    descendants,
    kill_all,
    port_open,
    ready_dev,
    shutdown_redis,
    user_env,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_orch_dev_stops_redis_and_the_workers(tmp_path: Path, sig: int) -> None:
    data = tmp_path / ".orch"
    log = tmp_path / "dev.log"
    env = user_env()
    with background([ORCH_SCRIPT, "dev", "-c", "1"], env=env, cwd=tmp_path, log=log) as dev:
        port = ready_dev(dev, data, log)
        started = descendants(dev.pid)
        assert len(started) >= 3, "redis-server, a worker and its pool child"
        assert port_open(port)
        dev.send_signal(sig)
        assert dev.wait(60) == 0, log.read_text()
    survivors = {pid for pid in started if alive(pid)}
    kill_all(survivors)
    assert survivors == set(), f"left running after {signal.Signals(sig).name}: {survivors}"
    assert not port_open(port), "the embedded Redis still listens"
    assert not (data / "redis.json").exists()
    assert "stopping" in log.read_text()


def test_a_signal_while_orch_dev_starts_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM before the pool is ready: Redis and the half-started worker stop too."""
    log = tmp_path / "dev.log"
    with background([ORCH_SCRIPT, "dev", "-c", "1"], env=user_env(), cwd=tmp_path, log=log) as dev:
        wait_until((tmp_path / ".orch" / "redis.json").exists, 60, "redis started")
        started = descendants(dev.pid)
        dev.send_signal(signal.SIGTERM)
        code = dev.wait(60)
        started |= {p for p in started if alive(p)}
    survivors = {pid for pid in started if alive(pid)}
    kill_all(survivors)
    assert survivors == set()
    assert code in (0, 128 + signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text()


def http_status(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _orphaned_server(data: Path) -> int:
    """An embedded server whose owner is gone, as a SIGKILLed `orch dev` leaves it."""
    code = (
        "import os, sys; from pathlib import Path; "
        "from orchestrator.embedded import EmbeddedRedis; "
        "s = EmbeddedRedis(Path(sys.argv[1])); s.start(); print(s.port); os._exit(0)"
    )
    out = data.parent / "orphan.out"
    with out.open("w") as sink:  # not a pipe: the server keeps its end open for good
        subprocess.run([sys.executable, "-c", code, str(data)], stdout=sink, check=True, timeout=60)
    return int(out.read_text().strip())


def test_a_stale_embedded_server_is_named_adopted_and_stopped(tmp_path: Path) -> None:
    data = tmp_path / ".orch"
    port = _orphaned_server(data)
    try:
        found = find_server(data)
        assert found is not None and found.orphaned
        owner = json.loads((data / "redis.json").read_text())["pid"]
        log = tmp_path / "dev.log"
        with background(
            [ORCH_SCRIPT, "dev", "-c", "1"], env=user_env(), cwd=tmp_path, log=log
        ) as dev:
            assert ready_dev(dev, data, log) == port, "the running server is used, not a second"
            banner = " ".join(log.read_text().split())  # Rich wraps lines at 80 columns
            assert "ORCH_REDIS_URL" not in banner, banner
            assert f"left running by pid {owner}, which is gone: adopted" in banner, banner
            dev.send_signal(signal.SIGTERM)
            assert dev.wait(60) == 0, log.read_text()
        assert not port_open(port), "an adopted server stops with the command that adopted it"
    finally:
        shutdown_redis(port)


def test_a_server_whose_owner_runs_is_shared_not_adopted(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    try:
        found = find_server(tmp_path / "data")
        assert found is not None
        assert found.owner_pid == os.getpid()
        assert not found.orphaned
    finally:
        server.stop()
    assert find_server(tmp_path / "data") is None


def test_a_signal_to_orch_flower_stops_flower_and_its_api_needs_the_password(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    port = free_port()
    env = user_env(ORCH_REDIS_URL=redis_server.url)
    argv = [ORCH_SCRIPT, "flower", "--port", str(port), "--basic-auth", "ana:s3cret"]
    log = tmp_path / "flower.log"
    with background(argv, env=env, cwd=tmp_path, log=log) as proc:

        def listening() -> bool:
            assert proc.poll() is None, log.read_text()
            return port_open(port)

        wait_until(listening, 60, "Flower listens")
        url = f"http://127.0.0.1:{port}/api/workers"
        assert http_status(url) == 401
        assert http_status(url, auth=("ana", "s3cret")) == 200
        started = descendants(proc.pid)
        assert started, "Flower runs as a child of orch flower"
        cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in started]
        assert not any(b"s3cret" in c for c in cmdlines), "the password is not on a command line"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    survivors = {pid for pid in started if alive(pid)}
    kill_all(survivors)
    assert survivors == set()
    assert not port_open(port)
