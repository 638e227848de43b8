"""Commands that run things: dev, worker, demo, flower."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Annotated

import typer

from orchestrator.cli._app import app, console, err_console
from orchestrator.connection import resolve_url
from orchestrator.errors import EXIT_RUN_FAILED, EXIT_USAGE, OrchestratorError
from orchestrator.settings import Settings

Concurrency = Annotated[
    int | None, typer.Option("--concurrency", "-c", min=1, help="Processes per worker.")
]
Queues = Annotated[str | None, typer.Option("--queues", "-Q", help="Comma-separated queues.")]


def _split(queues: str | None) -> list[str]:
    return [q.strip() for q in (queues or "").split(",") if q.strip()]


@app.command()
def dev(
    concurrency: Concurrency = None,
    queues: Queues = None,
    flower: Annotated[bool, typer.Option("--flower", help="Also start Flower on :5555.")] = False,
) -> None:
    """Run Redis (embedded unless ORCH_REDIS_URL) and a worker pool in the foreground."""
    from workers.devenv import dev_environment  # noqa: PLC0415 - worker side, loaded on demand

    settings = Settings()
    c = concurrency or settings.worker_concurrency
    with dev_environment(
        settings, concurrency=c, queues=_split(queues), loglevel="INFO", events=flower
    ) as env:
        flower_proc = _start_flower(env.url) if flower else None
        where = "embedded, AOF in " + str(settings.data_dir) if env.embedded else "ORCH_REDIS_URL"
        console.print(f"[bold]orch dev[/bold]: Redis {env.url} ({where})")
        console.print(
            f"workers: {c} processes on queues {', '.join(env.queues)}; logs in "
            f"{settings.data_dir / 'logs'}"
        )
        console.print(
            "in another shell (same directory): orch submit WORKFLOW.yaml --input '{...}' --wait"
        )
        console.print("Ctrl-C stops everything.")
        try:
            while all(w.process.poll() is None for w in env.pool.workers):
                time.sleep(0.5)
            err_console.print("orch: error: a worker process exited; see its log")
            raise typer.Exit(EXIT_RUN_FAILED)
        except KeyboardInterrupt:
            console.print("stopping…")
        finally:
            if flower_proc is not None:
                flower_proc.terminate()


@app.command()
def worker(
    queues: Queues = None,
    concurrency: Concurrency = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    events: Annotated[
        bool, typer.Option("--events", "-E", help="Send task events (for Flower).")
    ] = False,
    check: Annotated[
        bool, typer.Option(help="Refuse to start if a routed task cannot be imported.")
    ] = True,
    hostname: Annotated[
        str | None,
        typer.Option(
            "--hostname",
            "-n",
            help="Node name (Celery's %h is the host); default orch-<random>@%h, unique.",
        ),
    ] = None,
) -> None:
    """Run one worker (prefork pool) on the given queues against the configured Redis."""
    from workers.names import unique_node_name  # noqa: PLC0415 - worker side, loaded on demand

    settings = Settings()
    wanted = _split(queues) or [settings.default_queue]
    url = resolve_url(settings)
    if check:
        _check_imports(url, settings, set(wanted))
    argv = [
        "worker",
        "-Q",
        ",".join(wanted),
        "-c",
        str(concurrency or settings.worker_concurrency),
        "-n",
        hostname or unique_node_name(),
        "--loglevel",
        loglevel,
        "--without-mingle",
        "--without-gossip",
    ]
    if events:
        argv.append("-E")
    from workers.app import create_app  # noqa: PLC0415

    create_app(settings, redis_url=url).worker_main(argv)


def _check_imports(url: str, settings: Settings, queues: set[str]) -> None:
    """Import every task routed to these queues, for every registered workflow version."""
    from orchestrator.connection import connect  # noqa: PLC0415
    from orchestrator.graph import check_imports  # noqa: PLC0415
    from orchestrator.keys import Keys  # noqa: PLC0415
    from orchestrator.spec import Workflow  # noqa: PLC0415

    client = connect(url, settings, who="worker")
    try:
        for key in client.scan_iter(match=Keys(settings.key_prefix).workflow("*"), count=500):
            for raw in client.hvals(key):
                wf = Workflow.from_json(raw)
                routed = [
                    n for n, s in wf.steps.items() if (s.queue or settings.default_queue) in queues
                ]
                try:
                    check_imports(wf, routed)
                except OrchestratorError as exc:
                    raise OrchestratorError(f"workflow {wf.ref}: {exc}") from None
    finally:
        client.close()


@app.command()
def demo(
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, help="How many documents.")] = 20,
    concurrency: Concurrency = None,
) -> None:
    """Run the document-triage example on the embedded default and report timings."""
    from orchestrator.cli._demo import run_demo  # noqa: PLC0415

    ok = run_demo(Settings(), runs=runs, concurrency=concurrency)
    if not ok:
        raise typer.Exit(EXIT_RUN_FAILED)


def _start_flower(url: str) -> subprocess.Popen[bytes] | None:
    if (
        shutil.which("celery") is None
        or subprocess.run(
            [sys.executable, "-c", "import flower"], capture_output=True, check=False
        ).returncode
    ):
        err_console.print(
            "orch: flower is not installed: pip install 'celery-orchestrator[flower]'"
        )
        return None
    env = {**os.environ, "ORCH_REDIS_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "flower"], env=env
    )


@app.command()
def flower() -> None:
    """Run Flower against the configured Redis (workers need --events to report tasks)."""
    url = resolve_url(Settings())
    proc = _start_flower(url)
    if proc is None:
        raise typer.Exit(EXIT_USAGE)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
