"""Commands about runs: submit, status, runs. All read Redis; all take ``--json``.

The client and Rich's tables are imported inside the commands, so that every
``orch`` invocation does not pay for what only some commands use.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli._app import (
    app,
    console,
    parse_input,
    parse_json_value,
    print_json,
    real_console,
    say,
)
from orchestrator.errors import EXIT_RUN_FAILED
from orchestrator.states import RUN_TERMINAL, RunState

if TYPE_CHECKING:
    from rich.table import Table
    from rich.tree import Tree

    from orchestrator.client import Client

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
STATE_STYLE = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "RUNNING": "yellow",
    "QUEUED": "cyan",
    "RETRYING": "magenta",
    "SKIPPED": "dim",
    "WAITING": "blue",
}


def _styled(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def time_left(seconds: float | None) -> str:
    """A live run's time before its deadline, as `orch runs` shows it."""
    if seconds is None:
        return ""
    if seconds <= 0:
        return "passed"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m left"
    return f"{minutes}m {secs:02d}s left" if minutes else f"{secs}s left"


def status_table(doc: dict[str, Any]) -> Table:
    from rich.table import Table  # noqa: PLC0415

    title = f"run {doc['id']}  {doc['workflow']} v{doc['version']}  {_styled(doc['state'])}"
    table = Table(title=title, title_justify="left")
    table.add_column("step", no_wrap=True)
    for col in ("state", "attempts", "queue wait", "ran for"):
        table.add_column(col, overflow="fold")
    table.add_column("error", overflow="fold", ratio=1)
    for name, s in doc["steps"].items():
        wait = seconds_between(s["queued_at"], s["started_at"])
        ran = seconds_between(s["started_at"], s["finished_at"])
        elements = f" ×{s['elements']}" if "elements" in s else ""
        woke = f" until {s['wake_at']}" if s.get("wake_at") and s["state"] == "WAITING" else ""
        table.add_row(
            name + elements,
            _styled(s["state"]) + woke,
            str(s["attempts"]),
            f"{wait * 1000:.0f} ms" if wait is not None else "",
            f"{ran * 1000:.0f} ms" if ran is not None else "",
            (s["error"] or "")[:80],
        )
    if doc["error"]:
        table.caption = f"error: {doc['error']}"
    return table


def _has_children(doc: dict[str, Any]) -> bool:
    return any(s.get("child") or s.get("children") for s in doc["steps"].values())


def run_tree(doc: dict[str, Any]) -> Tree:
    """The run and its child runs (``Run.tree``): one line a run, under the step that started it."""
    from rich.tree import Tree  # noqa: PLC0415

    def label(d: dict[str, Any]) -> str:
        return f"run {d['id']}  {d['workflow']} v{d['version']}  {_styled(d['state'])}"

    def grow(node: Tree, d: dict[str, Any]) -> None:
        for name, s in d["steps"].items():
            for child in s.get("runs", []):
                grow(node.add(f"[bold]{name}[/bold] → {label(child)}"), child)

    parent = doc.get("parent")
    top = label(doc) + (
        f"  (child of run {parent['run']}, step {parent['step']})" if parent else ""
    )
    tree = Tree(top)
    grow(tree, doc)
    return tree


def _client(*, read_only: bool = False) -> Client:
    """A client; a read-only one for the quick commands (no redis-py import: leanredis.py)."""
    from orchestrator.client import Client  # noqa: PLC0415 - Redis and the store, on demand

    return Client(read_only=read_only)


def _run_state(text: str) -> str:
    """A run state named in any case; exit 2 naming the allowed ones otherwise."""
    allowed = [s.value for s in RunState]
    if text.upper() not in allowed:
        raise typer.BadParameter(
            f"{text!r} is not a run state; use one of {', '.join(allowed)}", param_hint="--state"
        )
    return text.upper()


def _exit_for(doc: dict[str, Any]) -> None:
    if doc["state"] in RUN_TERMINAL and doc["state"] != RunState.SUCCEEDED:
        raise typer.Exit(EXIT_RUN_FAILED)


@app.command()
def submit(
    workflow: Annotated[
        str, typer.Argument(help="YAML file, or the name[:version] of a workflow submitted before.")
    ],
    input: Annotated[
        str | None, typer.Option("--input", "-i", help="Run input: JSON, or @file.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Idempotency key: the same key gives the same run.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run to end; exit 1 if it failed.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds --wait waits at most.")
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            help="Cancel the run (with compensation) if it has not ended within this "
            "duration, e.g. 90s, 30m, 1h; overrides the workflow's deadline.",
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            "--priority",
            "-p",
            min=0,
            max=9,
            help="0-9, higher runs sooner (default: the spec's, else 0).",
        ),
    ] = None,
    fairness_key: Annotated[
        str | None,
        typer.Option(
            "--fairness-key", help="The run's tenant (default: from the spec's fairness.key)."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Start a run and print its id (with --wait --json, its final status document).

    Exit 4 when admission control refuses it (a max_queued limit is reached).
    """
    run_input = parse_input(input)
    with _client() as client:
        run = client.submit(
            workflow,
            run_input,
            key=key,
            priority=priority,
            fairness_key=fairness_key,
            deadline=deadline,
        )
        if not wait:
            print_json({"id": run.id}) if as_json else print(run.id)
            return
        doc = run.wait(timeout)
    if as_json:
        print_json(doc)
    else:
        print(run.id)
        console.print(status_table(doc))
    _exit_for(doc)


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until the run ends.")] = False,
    tree: Annotated[
        bool, typer.Option("--tree", help="With --json: nest each child run under its step.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Show a run: its state, every step's state, attempts and timings, and its child runs."""
    with _client(read_only=not watch) as client:  # --watch waits on end-of-run notices
        run = client.run(run_id)
        doc = run.tree() if tree else run.status()
        if watch and not as_json:
            from rich.live import Live  # noqa: PLC0415

            with Live(
                status_table(doc), console=real_console(console), refresh_per_second=4
            ) as live:
                while doc["state"] not in RUN_TERMINAL:
                    time.sleep(0.25)
                    doc = run.status()
                    live.update(status_table(doc))
        elif watch:
            doc = run.wait()
        family = run.tree() if not as_json and (_has_children(doc) or doc.get("parent")) else None
    if as_json:
        print_json(doc)
    elif not watch:
        console.print(status_table(doc))
        if family is not None:
            console.print(run_tree(family))
    _exit_for(doc) if watch else None


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only this workflow.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help=f"Only runs in this state: {', '.join(s.value for s in RunState)}.",
        ),
    ] = None,
    stuck: Annotated[
        bool, typer.Option("--stuck", help="Only runs that made no progress (see --stuck-after).")
    ] = False,
    stuck_after: Annotated[
        float, typer.Option("--stuck-after", min=0, help="Seconds without progress.")
    ] = 600.0,
    fairness_key: Annotated[
        str | None, typer.Option("--fairness-key", help="Only runs of this fairness key.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """List recent runs, newest first, with version, state and duration."""
    if state is not None:
        state = _run_state(state)
    with _client(read_only=True) as client:
        after = stuck_after if stuck else None
        docs = client.runs(
            limit=limit,
            workflow=workflow,
            state=state,
            stuck_after=after,
            fairness_key=fairness_key,
        )
        for line in client.data_losses():
            say("warning", line)
    if as_json:
        print_json([{k: v for k, v in d.items() if k != "steps"} for d in docs])
        return
    console.print(runs_table(docs, stuck=stuck))


RUN_ID_WIDTH = 23  # run ids: 6 hex digits of the epoch, '-', 16 more: users copy them whole


def runs_table(docs: list[dict[str, Any]], *, stuck: bool = False) -> Table:
    """Recent runs; at any width the ids stay whole and other columns fold instead."""
    from rich.table import Table  # noqa: PLC0415

    title = f"{len(docs)} stuck runs" if stuck else f"{len(docs)} recent runs"
    table = Table(title=title, title_justify="left")
    table.add_column("run", no_wrap=True, min_width=RUN_ID_WIDTH)
    for col in ("workflow", "version", "state", "created", "took", "deadline"):
        table.add_column(col, overflow="fold")
    if stuck:
        table.add_column("stuck", overflow="fold", ratio=1)
    for d in docs:
        took = seconds_between(d["created_at"], d["finished_at"])
        row = [d["id"], d["workflow"], str(d["version"]), _styled(d["state"]), d["created_at"]]
        row.append(f"{took:.2f} s" if took is not None else "")
        row.append(time_left(d.get("deadline_in")))
        table.add_row(*row, *([d["stuck"]] if stuck else []))
    return table


@app.command()
def coverage(
    workflow: Annotated[str, typer.Argument(help="YAML file, or name[:version] submitted before.")],
    as_json: AsJson = False,
) -> None:
    """Branch coverage: the edges of a workflow version no run has taken yet."""
    with _client() as client:
        doc = client.coverage(workflow)
    if as_json:
        print_json(doc)
        return
    console.print(
        f"{doc['workflow']} v{doc['version']}: {doc['taken']}/{doc['edges']} edges taken "
        f"({doc['coverage']:.0%})"
    )
    for edge in doc["never_taken"]:
        console.print(f"  never taken: {edge}")


@app.command()
def signal(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    name: Annotated[str, typer.Argument(help="Signal name (a step's wait_for).")],
    data: Annotated[str | None, typer.Option("--data", "-d", help="JSON, or @file.")] = None,
    as_json: AsJson = False,
) -> None:
    """Send a signal: the run's steps waiting for it succeed with the data as output."""
    value = parse_json_value(data)
    with _client() as client:
        steps = client.signal(run_id, name, value)
    if as_json:
        print_json({"id": run_id, "signal": name, "completed": steps})
    else:
        console.print(f"run {run_id}: signal {name!r} completed {', '.join(steps)}")


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the run's history.")] = "",
    as_json: AsJson = False,
) -> None:
    """Cancel a run: no new steps start, completed ones are compensated, it ends CANCELLED."""
    with _client() as client:
        state = client.cancel(run_id, reason)
    if as_json:
        print_json({"id": run_id, "state": state})
    else:
        console.print(f"run {run_id}: {state}")


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="Id of a FAILED run.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the new run to end.")] = False,
    as_json: AsJson = False,
) -> None:
    """Resume a FAILED run from its failed steps (a new run; completed steps are kept)."""
    with _client() as client:
        run = client.retry(run_id)
        doc = run.wait() if wait else None
    if as_json:
        print_json(doc if doc is not None else {"id": run.id, "resumed_from": run_id})
    else:
        print(run.id)
    if doc is not None:
        _exit_for(doc)


@app.command()
def compensate(
    run_id: Annotated[str, typer.Argument(help="Id of a run whose compensation failed.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end.")] = False,
    as_json: AsJson = False,
) -> None:
    """Retry the compensation that failed for good, then undo the steps completed before it."""
    with _client() as client:
        run = client.compensate(run_id)
        doc = run.wait() if wait else run.status()
    if as_json:
        print_json(doc)
    else:
        console.print(f"run {run_id}: {doc['state']}")
    if any(step["state"] == "COMPENSATION_FAILED" for step in doc["steps"].values()):
        raise typer.Exit(EXIT_RUN_FAILED)
