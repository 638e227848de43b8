"""The Typer application object and helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from orchestrator.errors import SpecError

app = typer.Typer(
    name="orch",
    help="Versioned, typed, observable workflows on Celery + Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

console = Console()
err_console = Console(stderr=True)


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
