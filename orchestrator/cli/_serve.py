"""``orch serve``: the HTTP API and the web console, on the configured Redis."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli._app import app, console

Host = Annotated[
    str, typer.Option("--host", help="Address to bind; beyond loopback needs ORCH_API_TOKENS.")
]
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to bind.")]


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8080) -> None:
    """Serve the HTTP API (/api, /openapi.json) and the web console (/console)."""
    from orchestrator.api.serve import check_exposure, port_free  # noqa: PLC0415
    from orchestrator.api.serve import serve as run_server  # noqa: PLC0415
    from orchestrator.client import Client  # noqa: PLC0415
    from orchestrator.errors import OrchestratorError  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415

    settings = Settings()
    check_exposure(host, settings)
    if not port_free(host, port):
        raise OrchestratorError(f"--port {port}: already in use on {host}; pick another")
    with Client(settings=settings) as client:
        client.reads.now()  # Redis answers, or exit 3 now rather than on the first request
        shown = f"[{host}]" if ":" in host else host
        console.print(f"console: http://{shown}:{port}/console/  ·  API: http://{shown}:{port}/api")
        console.print(f"OpenAPI: http://{shown}:{port}/openapi.json  ·  Ctrl-C stops")
        run_server(client, host, port)
