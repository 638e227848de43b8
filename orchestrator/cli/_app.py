"""The Typer application object and helpers shared by the command modules.

The Rich consoles are made on first use, so a command that prints JSON (``orch
status --json``, what scripts call) never loads Rich.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from orchestrator.errors import SpecError

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """Stands for a ``rich.console.Console`` built at the first attribute it is asked for."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console  # noqa: PLC0415

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real(), name)


def real_console(proxy: Console) -> Console:
    """The Console behind ``console`` or ``err_console``, for Rich objects that keep one."""
    return proxy.real() if isinstance(proxy, _LazyConsole) else proxy


def escape(text: str) -> str:
    """Rich markup escaped (``[flower]`` stays ``[flower]``), loading Rich only here."""
    from rich.markup import escape as rich_escape  # noqa: PLC0415

    return rich_escape(text)


app = typer.Typer(
    name="orch",
    help="Versioned, typed, observable workflows on Celery + Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

console = cast("Console", _LazyConsole())
err_console = cast("Console", _LazyConsole(stderr=True))


def say(kind: str, message: str) -> None:
    """``orch: error: ...`` or ``orch: warning: ...`` as one line on stderr, never wrapped."""
    print(f"orch: {kind}: {message}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def parse_input(text: str | None) -> dict[str, Any]:
    """``--input``: inline JSON, or ``@path`` to a JSON file; must be an object."""
    if text is None:
        return {}
    value = parse_json_value(text, option="--input")
    if not isinstance(value, dict):
        raise SpecError("the run input must be a JSON object", where="--input")
    return value


def parse_json_value(text: str | None, *, option: str = "--data") -> Any:
    """Any JSON value, inline or from ``@path``; None when the option was not given."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"{option} {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(f"cannot read file: {exc.strerror}", where=source) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", where=source
        ) from None
