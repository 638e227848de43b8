"""The ``orch`` command line (also ``python -m orchestrator``).

``main`` owns the exit-code contract: 0 ok, 1 the run failed, 2 bad usage or
invalid spec, 3 Redis unreachable. Every error is printed as one line; a
traceback is shown only with ``ORCH_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import redis
import typer

from orchestrator.cli._app import app
from orchestrator.errors import EXIT_RUN_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, OrchestratorError

__all__ = ["app", "main"]


def _fail(message: str, code: int) -> None:
    print(f"orch: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    from orchestrator.cli import _dev, _metrics, _run, _spec  # noqa: F401, PLC0415 - registers commands

    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except OrchestratorError as exc:
        _fail(str(exc).splitlines()[0], exc.exit_code)
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # a call no Client method wraps
        _fail(f"Redis stopped answering: {exc}", EXIT_UNREACHABLE)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except Exception as exc:
        _fail(*_describe(exc))


def _describe(exc: Exception) -> tuple[str, int]:
    """One line for an exception that escaped a command, and its exit code."""
    format_message = getattr(exc, "format_message", None)
    if callable(format_message):  # a usage error from (Typer's vendored) click
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        return f"{where}{format_message()}", EXIT_USAGE
    if os.environ.get("ORCH_DEBUG"):
        raise exc
    message = f"internal error: {type(exc).__name__}: {exc} (ORCH_DEBUG=1 shows a traceback)"
    return message, EXIT_RUN_FAILED
