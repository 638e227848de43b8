"""Commands that run things: dev, worker, demo (flower is in ``_flower``).

Foreground commands that own child processes run inside ``stop_signals``, so
Ctrl-C, SIGTERM and SIGHUP all stop the embedded Redis, the workers and Flower
the same way (see ``_stop``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli._app import app, console, escape, say
from orchestrator.cli._stop import stop_signals
from orchestrator.errors import EXIT_RUN_FAILED

if TYPE_CHECKING:
    from orchestrator.settings import Settings
    from workers.devenv import DevEnvironment

Concurrency = Annotated[
    int | None, typer.Option("--concurrency", "-c", min=1, help="Processes per worker.")
]
Queues = Annotated[str | None, typer.Option("--queues", "-Q", help="Comma-separated queues.")]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", min=1, max=65535, help="Serve the scorecard to Prometheus on this port."
    ),
]


def _split(queues: str | None) -> list[str]:
    return [q.strip() for q in (queues or "").split(",") if q.strip()]


@app.command()
def dev(
    concurrency: Concurrency = None,
    queues: Queues = None,
    flower: Annotated[bool, typer.Option("--flower", help="Also start Flower.")] = False,
    flower_port: Annotated[
        int, typer.Option("--flower-port", min=1, max=65535, help="Flower's port.")
    ] = 5555,
    metrics_port: MetricsPort = None,
    api: Annotated[
        bool, typer.Option("--api/--no-api", help="Serve the HTTP API and console.")
    ] = True,
    api_port: Annotated[
        int, typer.Option("--api-port", min=1, max=65535, help="Port of the API and console.")
    ] = 8080,
) -> None:
    """Run Redis (embedded unless ORCH_REDIS_URL), a worker pool and the console, in the
    foreground."""
    from orchestrator.cli._flower import start_flower, stop_flower  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415
    from workers.devenv import dev_environment  # noqa: PLC0415 - worker side, loaded on demand

    settings = Settings()
    c = concurrency or settings.worker_concurrency
    with (
        stop_signals(),
        dev_environment(
            settings, concurrency=c, queues=_split(queues), loglevel="INFO", events=flower
        ) as env,
    ):
        flower_proc = None
        try:
            if metrics_port is not None:
                _serve_metrics(env.url, settings, metrics_port)
            if flower:
                flower_proc = start_flower(env.url, port=flower_port)
            if api:
                start_console(env.url, settings, api_port)
            _banner(env, settings, c, flower_port if flower else None)
            _supervise(env, flower_proc)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP
            console.print("stopping…")
        finally:
            stop_flower(flower_proc)


def _serve_metrics(url: str, settings: Settings, port: int) -> None:
    """The scorecard's Prometheus endpoint, served by this process (it reads Redis)."""
    from orchestrator.connection import connect  # noqa: PLC0415
    from orchestrator.keys import Keys  # noqa: PLC0415
    from orchestrator.scorecard.prometheus import serve  # noqa: PLC0415
    from orchestrator.store.reads import RunReader  # noqa: PLC0415

    reads = RunReader(connect(url, settings), Keys(settings.key_prefix))
    serve(port, reads, default_queue=settings.default_queue)
    console.print(f"Prometheus metrics on http://127.0.0.1:{port}/metrics")


def start_console(url: str, settings: Settings, port: int) -> str | None:
    """Serve the API and console on a thread of this process (loopback only); its address.

    A port in use is a warning, not a failure: the workers matter more than the console.
    """
    from orchestrator.api.serve import ServerThread, port_free  # noqa: PLC0415
    from orchestrator.client import Client  # noqa: PLC0415

    if not port_free("127.0.0.1", port):
        say("warning", f"console not served: port {port} is in use (--api-port picks another)")
        return None
    server = ServerThread(Client(url, settings=settings), port=port).start()
    console.print(f"console: {server.url}/console/  ·  HTTP API: {server.url}/api")
    return server.url


def _banner(env: DevEnvironment, settings: Settings, c: int, flower_port: int | None) -> None:
    console.print(f"[bold]orch dev[/bold]: Redis {env.url} ({escape(env.redis_origin)})")
    logs = escape(str(settings.data_dir / "logs"))
    console.print(f"workers: {c} processes on queues {', '.join(env.queues)}; logs in {logs}")
    if flower_port is not None:
        console.print(f"Flower: http://localhost:{flower_port}")
    console.print(
        "in another shell (same directory): orch submit WORKFLOW.yaml --input '{...}' --wait"
    )
    console.print("Ctrl-C (or SIGTERM) stops everything.")


def _supervise(env: DevEnvironment, flower_proc: subprocess.Popen[bytes] | None) -> None:
    """Return never: wait until a child dies (an error) or a signal arrives."""
    from orchestrator.cli._flower import flower_failed  # noqa: PLC0415

    while True:
        if not all(w.process.poll() is None for w in env.pool.workers):
            say("error", "a worker process exited; see its log")
            raise typer.Exit(EXIT_RUN_FAILED)
        if flower_proc is not None and flower_proc.poll() is not None:
            raise flower_failed(flower_proc.returncode)
        time.sleep(0.5)


@app.command()
def worker(
    queues: Queues = None,
    concurrency: Concurrency = None,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
    events: Annotated[
        bool, typer.Option("--events", "-E", help="Send task events (for Flower).")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            help="Import the tasks routed to these queues first; ORCH_IMPORT_CHECK says what "
            "a failure does (strict: exit 2, warn: log and start)."
        ),
    ] = True,
    hostname: Annotated[
        str | None,
        typer.Option(
            "--hostname",
            "-n",
            help="Node name (Celery's %h is the host); default orch-<random>@%h, unique.",
        ),
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run one worker (prefork pool) on the given queues against the configured Redis."""
    from orchestrator.connection import resolve_url  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415
    from workers.names import unique_node_name  # noqa: PLC0415 - worker side, loaded on demand

    settings = Settings()
    if metrics_port is not None:
        settings = dataclasses.replace(settings, metrics_port=metrics_port)
    wanted = _split(queues) or [settings.default_queue]
    url = resolve_url(settings)
    if check and settings.import_check != "off":
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
    """The start-up import check (see ``orchestrator.importcheck``), reported here."""
    from orchestrator.connection import connect  # noqa: PLC0415
    from orchestrator.importcheck import check_worker_imports  # noqa: PLC0415
    from orchestrator.keys import Keys  # noqa: PLC0415

    client = connect(url, settings, who="worker")
    try:
        report = check_worker_imports(
            client,
            Keys(settings.key_prefix),
            queues=queues,
            default_queue=settings.default_queue,
            mode=settings.import_check,
        )
    finally:
        client.close()
    for ref, problem in report.failed.items():
        say(
            "warning",
            f"workflow {ref} cannot run on this worker ({problem}); starting anyway "
            "(ORCH_IMPORT_CHECK=warn): its steps fail if they reach it",
        )


@app.command()
def demo(
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, help="How many documents.")] = 20,
    concurrency: Concurrency = None,
) -> None:
    """Run the document-triage example on the embedded default and report timings."""
    from orchestrator.cli._demo import run_demo  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415

    with stop_signals():
        ok = run_demo(Settings(), runs=runs, concurrency=concurrency)
    if not ok:
        raise typer.Exit(EXIT_RUN_FAILED)
