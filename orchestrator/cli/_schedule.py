"""``orch schedule``: add, list, pause, resume and remove the schedules in Redis.

Workers fire them (any number of workers, or ``orch dev``); these commands
only change what is stored. See orchestrator/schedules/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli._app import app, console, parse_input, print_json

if TYPE_CHECKING:
    from rich.table import Table

    from orchestrator.client import Client

schedule_app = typer.Typer(
    help="Cron schedules that start runs; every worker fires them, one run per tick.",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Name = Annotated[str, typer.Argument(help="Schedule name.")]


def _client() -> Client:
    from orchestrator.client import Client  # noqa: PLC0415

    return Client()


@schedule_app.command("add")
def add(
    name: Name,
    workflow: Annotated[
        str, typer.Argument(help="YAML file, or the name[:version] of a workflow submitted before.")
    ],
    cron: Annotated[
        str, typer.Option("--cron", help='Cron fields, e.g. "0 3 * * *" (six: leading seconds).')
    ],
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of the cron fields.")] = "UTC",
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Run input: JSON, or @file.")
    ] = None,
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap", help="When the previous run is still live: skip, queue or allow."
        ),
    ] = "skip",
    catchup: Annotated[
        int, typer.Option("--catchup", help="Missed ticks to run late (the latest N).")
    ] = 0,
    as_json: AsJson = False,
) -> None:
    """Store a schedule; the workflow version is registered and kept by the schedule."""
    run_input = parse_input(input)
    with _client() as client:
        doc = client.schedules.add(
            name, workflow, cron, tz=tz, input=run_input, overlap=overlap, catchup=catchup
        )
    if as_json:
        print_json(doc)
    else:
        console.print(f"schedule {name}: {doc['workflow']} at {doc['cron']!r} {doc['tz']}")
        console.print(f"next tick {doc['next_at']}")


@schedule_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every schedule: its cron, next tick, last run and whether it is paused."""
    with _client() as client:
        docs = client.schedules.list()
    if as_json:
        print_json(docs)
    else:
        console.print(schedules_table(docs))


def schedules_table(docs: list[dict[str, Any]]) -> Table:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"{len(docs)} schedules", title_justify="left")
    table.add_column("name", no_wrap=True)  # what users type back: kept whole
    for col in ("workflow", "cron", "tz", "next tick", "last run", "state"):
        table.add_column(col, overflow="fold")
    for d in docs:
        state = "paused" if d["paused"] else "active"
        if d["error"]:
            state += f" ({d['error']})"
        table.add_row(
            d["name"],
            d["workflow"],
            d["cron"],
            d["tz"],
            "" if d["paused"] else d["next_at"],
            d["last_run"] or "",
            state,
        )
    return table


def _change(verb: str, name: str, as_json: bool) -> None:
    with _client() as client:
        done = getattr(client.schedules, verb)(name)
    word = {"pause": "paused", "resume": "resumed", "remove": "removed"}[verb]
    changed = done is not False
    if as_json:
        print_json({"name": name, word: changed})
    else:
        console.print(f"schedule {name} {word}" if changed else f"schedule {name}: already so")


@schedule_app.command("pause")
def pause(name: Name, as_json: AsJson = False) -> None:
    """Stop firing it; ticks that pass meanwhile are missed (see --catchup)."""
    _change("pause", name, as_json)


@schedule_app.command("resume")
def resume(name: Name, as_json: AsJson = False) -> None:
    """Fire it again from its next tick (and --catchup missed ones)."""
    _change("resume", name, as_json)


@schedule_app.command("remove")
def remove(name: Name, as_json: AsJson = False) -> None:
    """Delete it; runs it started go on."""
    _change("remove", name, as_json)
