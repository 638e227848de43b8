"""`orch serve` and `orch dev` serve the API and the console as real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.embedded import EmbeddedRedis, free_port
from tests.cli.procs import ORCH_SCRIPT, background, port_open, ready_dev, user_env, wait_until

pytestmark = pytest.mark.integration


def test_orch_serve_serves_the_api_and_console_until_sigterm(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = user_env(ORCH_REDIS_URL=redis_server.url)
    argv = [sys.executable, "-m", "orchestrator", "serve", "--port", str(port)]
    with background(argv, env=env, cwd=tmp_path, log=log) as proc:
        wait_until(lambda: port_open(port), 60, "orch serve listens")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/health").json() == {"ok": True}
        page = httpx.get(f"{base}/console/")
        assert page.status_code == 200 and "orch console" in page.text
        assert "text/javascript" in httpx.get(f"{base}/console/app.js").headers["content-type"]
        assert httpx.get(base, follow_redirects=False).headers["location"] == "/console/"
        assert f"console: http://127.0.0.1:{port}/console/" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    assert not port_open(port)
    busy = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "--port", str(redis_server.port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert busy.returncode == 2
    assert "already in use" in busy.stderr


def test_orch_dev_serves_the_console_too(tmp_path: Path) -> None:
    api_port = free_port()
    log = tmp_path / "dev.log"
    argv = [ORCH_SCRIPT, "dev", "-c", "1", "--api-port", str(api_port)]
    with background(argv, env=user_env(), cwd=tmp_path, log=log) as dev:
        ready_dev(dev, tmp_path / ".orch", log)
        banner = " ".join(log.read_text().split())
        assert f"console: http://127.0.0.1:{api_port}/console/" in banner, banner
        base = f"http://127.0.0.1:{api_port}"
        assert httpx.get(f"{base}/api/runs").json() == []
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(60) == 0, log.read_text()
    time.sleep(0.2)
    assert not port_open(api_port), "the console stops with orch dev"
