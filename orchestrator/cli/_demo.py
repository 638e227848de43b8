"""``orch demo``: the document-triage example on the embedded default, with timings.

It is the project's "main job": it starts a private Redis and a worker pool,
submits a batch of documents plus one that a late step refuses, follows them
with a progress bar while playing the human reviewer (approving the documents
whose label is uncertain), and prints per-run and per-step tables. A new user
sees retries, a human approval, child workflows (publish runs as a child run of
each document's run) and a compensated saga in under a minute.
"""

from __future__ import annotations

import statistics
import time
from importlib import resources
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli._app import console, real_console
from orchestrator.cli._metrics import scorecard_table
from orchestrator.cli._run import RUN_ID_WIDTH, _styled, seconds_between
from orchestrator.client import TERMINAL, Client, Run
from orchestrator.loader import load_family
from orchestrator.settings import Settings
from orchestrator.states import RunState

DEMO_SPEC = "document-triage.yaml"
BROKEN_URL = "https://example.com/doc/broken"
REVIEWER = {"approved": True, "by": "demo-reviewer"}


def run_demo(settings: Settings, *, runs: int, concurrency: int | None) -> bool:
    """Run the demo; True when every run succeeded."""
    from workers.devenv import dev_environment  # noqa: PLC0415

    spec = resources.files("orchestrator.examples") / DEMO_SPEC
    family = load_family(str(spec), import_tasks=True)  # the child workflow first
    wf = family[next(reversed(family))]
    started = time.monotonic()
    processes = concurrency or settings.worker_concurrency
    with dev_environment(settings, concurrency=processes) as env:
        console.print(f"Redis {env.url} · 1 worker × {processes} processes · {wf.ref}")
        _console(env.url, settings)
        with Client(env.url, settings=settings) as client:
            for member in family.values():
                client.register(member)
            urls = [f"https://example.com/doc/{i}" for i in range(runs)] + [BROKEN_URL]
            handles = [client.submit(wf, {"url": url}) for url in urls]
            docs, approved = _follow(client, handles)
            card = client.metrics(wf.ref, window="1h")
    wall = time.monotonic() - started
    console.print(_runs_table(docs))
    console.print(_steps_table(docs))
    scorecard = scorecard_table(card)
    if scorecard is not None:
        console.print(scorecard)
    normal, broken = docs[:-1], docs[-1]
    ok = sum(d["state"] == RunState.SUCCEEDED for d in normal)
    retries = sum(_retries(s) for d in docs for s in d["steps"].values())
    undone = [n for n, s in broken["steps"].items() if s["state"] == "COMPENSATED"]
    children = sum(1 for d in docs for s in d["steps"].values() if s.get("child"))
    console.print(
        f"{ok}/{len(normal)} documents succeeded · {children} child runs (publish) · "
        f"{retries} transient failures retried · "
        f"{approved} approved by a reviewer · the broken document ended {broken['state']}"
        f" ({', '.join(undone) or 'nothing'} undone) · {wall:.1f} s wall time "
        "(including Redis and worker start-up)"
    )
    return bool(ok == len(normal) and broken["state"] == RunState.COMPENSATED)


def _console(url: str, settings: Settings) -> None:
    """Serve the web console while the demo runs (on 8080, else a free port)."""
    from orchestrator.api.serve import ServerThread, port_free  # noqa: PLC0415

    port = 8080 if port_free("127.0.0.1", 8080) else 0
    server = ServerThread(Client(url, settings=settings), port=port).start()
    console.print(
        f"console: {server.url}/console/ (open it now: it is served while the demo runs; "
        "`orch dev` serves it for good)"
    )


def _follow(client: Client, handles: list[Run]) -> tuple[list[dict[str, Any]], int]:
    """Wait for every run, approving the reviews they wait for; returns (docs, approvals)."""
    columns = (TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    done: dict[str, dict[str, Any]] = {}
    approved = 0
    with Progress(*columns, console=real_console(console), transient=False) as progress:
        bar = progress.add_task("runs", total=len(handles))
        while len(done) < len(handles):
            for run in handles:
                if run.id in done:
                    continue
                doc = run.status()
                if doc["state"] in TERMINAL:
                    done[run.id] = doc
                elif doc["steps"]["review"]["state"] == "WAITING":
                    client.signal(run.id, "approval", REVIEWER)
                    approved += 1
            progress.update(bar, completed=len(done))
            time.sleep(0.1)
    return [done[run.id] for run in handles], approved


def _runs_table(docs: list[dict[str, Any]]) -> Table:
    table = Table(title="Runs", title_justify="left")
    table.add_column("run", no_wrap=True, min_width=RUN_ID_WIDTH)  # ids whole: users copy them
    table.add_column("input", overflow="fold", ratio=1)
    for col in ("state", "steps", "attempts", "took"):
        table.add_column(col, overflow="fold")
    for d in docs:
        took = seconds_between(d["created_at"], d["finished_at"]) or 0.0
        attempts = sum(s["attempts"] for s in d["steps"].values())
        table.add_row(
            d["id"],
            d["input"].get("url", ""),
            _styled(d["state"]),
            str(len(d["steps"])),
            str(attempts),
            f"{took * 1000:.0f} ms",
        )
    return table


def _retries(step: dict[str, Any]) -> int:
    """Attempts beyond the first; a map step makes one first attempt per element."""
    firsts = step.get("elements", 1)
    return max(0, int(step["attempts"]) - int(firsts))


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms" if values else "-"


def _steps_table(docs: list[dict[str, Any]]) -> Table:
    """Per step: median timings over the runs, and attempts and retried runs summed."""
    title = f"Per step, over {len(docs)} runs: median times; attempts and retried runs in total"
    table = Table(title=title, title_justify="left")
    table.add_column("step", no_wrap=True)
    for col in ("queue wait (median)", "ran for (median)", "attempts (total)", "retried runs"):
        table.add_column(col, overflow="fold")
    for name in docs[0]["steps"] if docs else []:
        steps = [d["steps"][name] for d in docs]
        waits = [
            w for s in steps if (w := seconds_between(s["queued_at"], s["started_at"])) is not None
        ]
        ran = [
            x
            for s in steps
            if (x := seconds_between(s["started_at"], s["finished_at"])) is not None
        ]
        attempts = sum(s["attempts"] for s in steps)
        retried = sum(1 for s in steps if _retries(s) > 0)
        table.add_row(name, _ms(waits), _ms(ran), str(attempts), str(retried))
    return table
