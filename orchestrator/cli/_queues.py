"""`orch queues`: what waits on each queue, by priority and fairness key, and the backlogs."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli._app import app, console, print_json

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def queues(as_json: AsJson = False) -> None:
    """Depth and oldest item's age per queue, priority and fairness key; runs not yet started."""
    from orchestrator.cli._run import _client  # noqa: PLC0415

    with _client(read_only=True) as client:
        doc = client.queues()
    if as_json:
        print_json(doc)
        return
    console.print(_queue_table(doc["queues"]))
    console.print(_backlog_table(doc["backlogs"], doc["refused"]))
    if doc["concurrency"]:
        console.print(_concurrency_table(doc["concurrency"]))


def _age(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _queue_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="messages waiting (held: kept back for fairness)", title_justify="left")
    for col in ("queue", "priority", "fairness key", "depth", "oldest"):
        table.add_column(col, overflow="fold")
    for r in rows:
        key = f"{r['fairness_key'] or '(none)'} (held)" if r["held"] else ""
        table.add_row(r["queue"], str(r["priority"]), key, str(r["depth"]), _age(r["oldest_age"]))
    return table


def _backlog_table(rows: list[dict[str, Any]], refused: dict[str, int]) -> Any:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="runs not started yet (admission backlog)", title_justify="left")
    for col in ("workflow", "fairness key", "waiting", "oldest", "refused"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = r["workflow"] + (f":{r['fairness_key']}" if r["fairness_key"] else "")
        table.add_row(
            r["workflow"],
            r["fairness_key"] or "",
            str(r["waiting"]),
            _age(r["oldest_age"]),
            str(refused.get(name, 0)),
        )
    return table


def _concurrency_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="runs held by concurrency limits", title_justify="left")
    for col in ("workflow", "key", "running", "waiting"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["workflow"], r["key"], str(r["running"]), str(r["waiting"]))
    return table
