"""``orch demo``: the document-triage example on the embedded default, with timings.

It is the project's "main job": it starts a private Redis and a worker pool,
submits a batch of documents, follows them with a progress bar, and prints
per-run and per-step tables, so a new user sees the whole product in a minute.
"""

from __future__ import annotations

import statistics
import time
from importlib import resources
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli._app import console
from orchestrator.cli._run import _styled, seconds_between
from orchestrator.client import TERMINAL, Client, Run
from orchestrator.loader import load_workflow
from orchestrator.settings import Settings
from orchestrator.states import RunState

DEMO_SPEC = "document-triage.yaml"


def run_demo(settings: Settings, *, runs: int, concurrency: int | None) -> bool:
    """Run the demo; True when every run succeeded."""
    from workers.devenv import dev_environment  # noqa: PLC0415

    spec = resources.files("examples") / DEMO_SPEC
    wf = load_workflow(str(spec), import_tasks=True)
    started = time.monotonic()
    processes = concurrency or settings.worker_concurrency
    with dev_environment(settings, concurrency=processes) as env:
        console.print(f"Redis {env.url} · 1 worker × {processes} processes · {wf.ref}")
        with Client(env.url, settings=settings) as client:
            handles = [
                client.submit(wf, {"url": f"https://example.com/doc/{i}"}) for i in range(runs)
            ]
            docs = _follow(handles)
    wall = time.monotonic() - started
    console.print(_runs_table(docs))
    console.print(_steps_table(docs))
    ok = sum(d["state"] == RunState.SUCCEEDED for d in docs)
    retries = sum(_retries(s) for d in docs for s in d["steps"].values())
    console.print(
        f"{ok}/{len(docs)} runs succeeded · {retries} transient failures retried · "
        f"{wall:.1f} s wall time (including Redis and worker start-up)"
    )
    return bool(ok == len(docs))


def _follow(handles: list[Run]) -> list[dict[str, Any]]:
    columns = (TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    done: dict[str, dict[str, Any]] = {}
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("runs", total=len(handles))
        while len(done) < len(handles):
            for run in handles:
                if run.id not in done:
                    doc = run.status()
                    if doc["state"] in TERMINAL:
                        done[run.id] = doc
            progress.update(bar, completed=len(done))
            time.sleep(0.1)
    return [done[run.id] for run in handles]


def _runs_table(docs: list[dict[str, Any]]) -> Table:
    table = Table(title="Runs", title_justify="left")
    for col in ("run", "input", "state", "steps", "attempts", "took"):
        table.add_column(col)
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
    table = Table(title="Per-step timings (median over runs)", title_justify="left")
    for col in ("step", "queue wait", "ran for", "attempts", "retried runs"):
        table.add_column(col)
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
