"""``orch flower``, and Flower for ``orch dev --flower``.

Flower runs as a child process (``celery -A workers.app flower``) against the
configured Redis. Before it starts, ``orch`` checks what would otherwise end in
a Flower traceback or a Flower that seems to run but shows nothing: that Flower
is installed (exit 2), that Redis answers (exit 3), and that the port is free
(exit 2). Afterwards Flower's own exit status is passed on: a Flower that
crashed is a failed command (exit 1), never exit 0.

Flower's API (``/api/workers``, ``/api/tasks``) answers 401 unless
authentication is configured. ``--basic-auth user:password`` is handed to
Flower in its environment (``FLOWER_BASIC_AUTH``), not on its command line,
so ``ps`` does not show it; every other ``FLOWER_*`` variable passes through
as well.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from typing import Annotated

import typer

from orchestrator.cli._app import app, say
from orchestrator.cli._stop import stop_signals
from orchestrator.errors import EXIT_RUN_FAILED, OrchestratorError

INSTALL_HINT = "flower is not installed: pip install 'celery-orchestrator[flower]'"
DEFAULT_PORT = 5555


def flower_installed() -> bool:
    probe = [sys.executable, "-c", "import flower"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def check_port_free(port: int, address: str = "") -> None:
    """Refuse, in one line, a port some other process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address or "0.0.0.0", port))
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc}"
            raise OrchestratorError(
                f"orch flower: port {port} {reason}; choose another with --port"
            ) from None


def start_flower(
    url: str, *, port: int = DEFAULT_PORT, address: str = "", basic_auth: str | None = None
) -> subprocess.Popen[bytes]:
    """Start Flower against ``url`` after the checks above; the caller stops it."""
    if not flower_installed():
        raise OrchestratorError(INSTALL_HINT)
    check_port_free(port, address)
    env = {**os.environ, "ORCH_REDIS_URL": url}
    if basic_auth:
        env["FLOWER_BASIC_AUTH"] = basic_auth
    cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "flower", f"--port={port}"]
    if address:
        cmd.append(f"--address={address}")
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)


def stop_flower(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def flower_failed(code: int) -> typer.Exit:
    """Report a Flower that exited by itself, and the exit to raise for it."""
    say("error", f"Flower exited with code {code}; its output is above")
    return typer.Exit(EXIT_RUN_FAILED)


@app.command()
def flower(
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535)] = DEFAULT_PORT,
    address: Annotated[
        str, typer.Option("--address", help="Interface to listen on (default: all).")
    ] = "",
    basic_auth: Annotated[
        str | None,
        typer.Option(
            "--basic-auth",
            help="user:password (comma-separated for several) for the UI and the API; "
            "FLOWER_BASIC_AUTH does the same without showing it in ps.",
        ),
    ] = None,
) -> None:
    """Run Flower against the configured Redis (workers need --events to report tasks)."""
    from orchestrator.connection import connect, resolve_url  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415

    settings = Settings()
    url = resolve_url(settings)
    connect(url, settings).close()  # exit 3 now, rather than a Flower that shows nothing
    with stop_signals():
        proc = start_flower(url, port=port, address=address, basic_auth=basic_auth)
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: stop Flower, then exit
            return
        finally:
            stop_flower(proc)
    if code != 0:
        raise flower_failed(code)
