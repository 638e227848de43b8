"""Serving the app with uvicorn: in the foreground (``orch serve``) or on a thread
(``orch demo``, tests).

A server that binds beyond loopback without ``ORCH_API_TOKENS`` would let
anyone on the network start and cancel runs, so it refuses to start.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING

from orchestrator.api.guard import is_loopback
from orchestrator.errors import OrchestratorError

#: What stops ``orch serve`` gracefully (the same as ``orch dev``).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

if TYPE_CHECKING:
    import uvicorn

    from orchestrator.client import Client
    from orchestrator.settings import Settings


def check_exposure(host: str, settings: Settings) -> None:
    """Refuse (exit 2) to bind beyond loopback with no bearer token configured."""
    if not is_loopback(host) and not settings.api_token_list:
        raise OrchestratorError(
            f"--host {host}: binding beyond loopback needs bearer tokens; set ORCH_API_TOKENS "
            "(comma-separated) or bind 127.0.0.1"
        )


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _config(client: Client, host: str, port: int) -> uvicorn.Config:
    import uvicorn  # noqa: PLC0415

    from orchestrator.api.app import create_app  # noqa: PLC0415

    return uvicorn.Config(
        create_app(client),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        workers=1,
    )


def serve(client: Client, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT, SIGTERM or SIGHUP: a graceful stop, exit 0.

    uvicorn re-raises the signal once it has shut down (so the process dies of it); as
    for ``orch dev``, a requested stop is a normal end here.
    """
    import uvicorn  # noqa: PLC0415

    check_exposure(host, client.settings)
    server = uvicorn.Server(_config(client, host, port))
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, server.handle_exit)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ServerThread:
    """The app served on a daemon thread: started, its address known, stopped on request."""

    def __init__(self, client: Client, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn  # noqa: PLC0415

        check_exposure(host, client.settings)
        self.host = host
        self.port = port or _free_port(host)
        self.server = uvicorn.Server(_config(client, host, self.port))
        self.thread = threading.Thread(target=self.server.run, name="orch-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OrchestratorError(f"the HTTP API did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
