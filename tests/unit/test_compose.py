"""The compose file and the CLI agree: every ``orch`` command in it parses, workers warn.

Docker is not needed: this is what can be checked without running containers
(``docker compose config`` checks the file's own schema; see compose/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer._click as click
import yaml
from typer.main import get_command

from orchestrator.cli import _dev, _flower, _run, _spec  # noqa: F401 - registers the commands
from orchestrator.cli._app import app

COMPOSE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def orch_commands() -> list[tuple[str, list[str]]]:
    found = [(name, list(s["command"])) for name, s in services().items() if "command" in s]
    return [(name, cmd) for name, cmd in found if cmd[0] == "orch"]


@pytest.mark.parametrize(("service", "argv"), orch_commands())
def test_every_orch_command_in_compose_parses(service: str, argv: list[str]) -> None:
    group = get_command(app)
    ctx = click.Context(group, info_name="orch")
    command = group.get_command(ctx, argv[1])
    assert command is not None, f"{service}: no command orch {argv[1]}"
    command.make_context(argv[1], argv[2:], parent=ctx)  # raises on an unknown option


def test_compose_workers_warn_instead_of_crash_looping() -> None:
    worker = services()["worker"]
    assert worker["restart"] == "unless-stopped"
    assert worker["environment"]["ORCH_IMPORT_CHECK"] == "warn"
    assert [name for name, _ in orch_commands()] == ["worker", "flower"]
