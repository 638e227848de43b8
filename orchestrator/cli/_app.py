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
    """``--input``: inline JSON, or ``@path`` to a JSON file."""
    if text is None:
        return {}
    source = "--input"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"--input {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(f"cannot read file: {exc.strerror}", where=source) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", where=source
        ) from None
    if not isinstance(value, dict):
        raise SpecError("the run input must be a JSON object", where=source)
    return value
