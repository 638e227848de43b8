"""The ``orch`` command line (also ``python -m orchestrator``).

``main`` owns the exit-code contract: 0 ok, 1 the run failed, 2 bad usage or
invalid spec, 3 Redis unreachable. Every error is printed as one line; a
traceback is shown only with ``ORCH_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import click
import typer

from orchestrator.cli._app import app
from orchestrator.errors import EXIT_RUN_FAILED, EXIT_USAGE, OrchestratorError

__all__ = ["app", "main"]


def _fail(message: str, code: int) -> None:
    print(f"orch: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    from orchestrator.cli import _dev, _run, _spec  # noqa: F401, PLC0415 - registers commands

    try:
        app(args=argv, standalone_mode=False)
    except OrchestratorError as exc:
        _fail(str(exc).splitlines()[0], exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        _fail(f"{where}{exc.format_message()}", EXIT_USAGE)
    except click.ClickException as exc:
        _fail(exc.format_message(), EXIT_USAGE)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("ORCH_DEBUG"):
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (ORCH_DEBUG=1 shows a traceback)",
            EXIT_RUN_FAILED,
        )
