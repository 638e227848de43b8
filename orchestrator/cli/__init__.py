"""The ``orch`` command line (also ``python -m orchestrator``).

``main`` owns the exit-code contract: 0 ok, 1 the run failed, 2 bad usage or
invalid spec, 3 Redis unreachable, 4 a submit refused by admission control
(each error's ``exit_code``, orchestrator/errors.py). Every error is printed as one line; a
traceback is shown only with ``ORCH_DEBUG=1``. Warnings the library raises
(data it could not check, say) are printed as one line too.

The working directory goes on ``sys.path`` first, as ``celery -A`` does, so
that ``orch worker`` and ``orch validate --import`` find the user's own step
modules (see ``orchestrator.userpath``).
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from typing import Any, NoReturn

import typer

from orchestrator.cli._app import app, say
from orchestrator.cli._lean import import_redis_lean, load_commands
from orchestrator.cli._stop import Stopped, received
from orchestrator.errors import EXIT_RUN_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, OrchestratorError
from orchestrator.userpath import add_cwd_to_sys_path

__all__ = ["app", "main"]


def _fail(message: str, code: int) -> NoReturn:
    print(f"orch: error: {message}", file=sys.stderr)
    sys.exit(code)


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    first = str(message).splitlines()[0] if str(message) else category.__name__
    say("warning", first)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    load_commands(args)
    import_redis_lean(args)
    add_cwd_to_sys_path()
    warnings.showwarning = _show_warning
    try:
        code = app(args=argv, standalone_mode=False)
        if code == TYPER_INTERRUPTED:
            _interrupted()
        if isinstance(code, int) and code:
            sys.exit(code)
    except OrchestratorError as exc:
        _fail(str(exc).splitlines()[0], exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Stopped as exc:
        _fail(f"stopped by {exc}", 128 + exc.signum)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except Exception as exc:
        if _is_redis_outage(exc):  # a call no Client method wraps
            _fail(f"Redis stopped answering: {exc}", EXIT_UNREACHABLE)
        _fail(*_describe(exc))


def _is_redis_outage(exc: Exception) -> bool:
    """Checked only once a command failed (redis-py's errors only if it was imported)."""
    from orchestrator.redis_errors import outage_errors  # noqa: PLC0415

    return isinstance(exc, outage_errors())


def _settings_error(exc: Exception) -> str | None:
    """A bad ``ORCH_*`` variable (pydantic refused it when ``Settings()`` was built)."""
    errors = getattr(exc, "errors", None)
    if getattr(exc, "title", None) != "Settings" or not callable(errors):
        return None
    first = errors()[0]
    field = "_".join(str(part) for part in first.get("loc", ())).upper()
    return f"ORCH_{field}={first.get('input')!r}: {first.get('msg')}"


#: What Typer returns for a KeyboardInterrupt (or ``Stopped``) that left a command.
TYPER_INTERRUPTED = 130


def _interrupted() -> NoReturn:
    """One line for a command cut short by Ctrl-C or a signal, and 128 + its number."""
    sig = received()
    if sig is None or sig == signal.SIGINT:
        _fail("interrupted", TYPER_INTERRUPTED)
    _fail(f"stopped by {signal.Signals(sig).name}", 128 + sig)


def _describe(exc: Exception) -> tuple[str, int]:
    """One line for an exception that escaped a command, and its exit code."""
    settings_problem = _settings_error(exc)
    if settings_problem is not None:
        return settings_problem, EXIT_USAGE
    format_message = getattr(exc, "format_message", None)
    if callable(format_message):  # a usage error from (Typer's vendored) click
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        return f"{where}{format_message()}", EXIT_USAGE
    if os.environ.get("ORCH_DEBUG"):
        raise exc
    message = f"internal error: {type(exc).__name__}: {exc} (ORCH_DEBUG=1 shows a traceback)"
    return message, EXIT_RUN_FAILED
