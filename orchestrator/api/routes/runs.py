"""Runs: submit, list, status, events, and the operator's moves (signal, cancel, retry,
compensate). Each body is the document ``orch <command> --json`` prints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from orchestrator.api.models import (
    CancelBody,
    CancelState,
    Plan,
    Resumed,
    RunStatus,
    RunSummary,
    SignalBody,
    Signalled,
    Submitted,
)
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routes.deps import Svc
from orchestrator.api.service import Service
from orchestrator.api.submitting import created, submit_run
from orchestrator.checks import reachable
from orchestrator.runs import Run
from orchestrator.states import RunState

JSON = "application/json"
router = APIRouter(prefix="/api/runs", tags=["runs"], responses=PROBLEM_RESPONSES)


#: The submit route reads its body itself (see ``submit``); this tells OpenAPI what it reads.
SUBMIT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitBody"}}},
    },
    "parameters": [
        {
            "name": "idempotency-key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": "The same key gives the same run (or the body's key).",
        }
    ],
}


@router.post("", status_code=201, response_model=Submitted, openapi_extra=SUBMIT_OPENAPI)
async def submit(request: Request) -> Response:
    """Start a run (``orch submit --json``); the same idempotency key gives the same run.

    The app answers this request ahead of routing (``api/submitting.py``, the producers'
    hot path); this route, reading through the same function, documents it.
    """
    svc: Service = request.app.state.service
    header = request.headers.get("idempotency-key")
    try:
        run_id = await submit_run(svc, await request.body(), header)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    _, body = created(run_id)
    location = f"/api/runs/{run_id}"
    return Response(body, status_code=201, headers={"location": location}, media_type=JSON)


@router.get("", response_model=list[RunSummary])
def list_runs(
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    workflow: Annotated[str | None, Query(max_length=100)] = None,
    state: RunState | None = None,
    stuck: bool = False,
    stuck_after: Annotated[float, Query(ge=0, le=10**9)] = 600.0,
) -> JSONResponse:
    """Recent runs, newest first (``orch runs --json``), filtered by workflow and state."""
    docs = svc.client.runs(
        limit=limit,
        workflow=workflow or None,
        state=state.value if state is not None else None,
        stuck_after=stuck_after if stuck else None,
    )
    return JSONResponse([{k: v for k, v in d.items() if k != "steps"} for d in docs])


@router.get("/{run_id}", response_model=RunStatus, response_model_exclude_unset=True)
def status(run_id: str, svc: Svc) -> JSONResponse:
    """A run and every step's state, attempts, timings, error and output (``orch status``)."""
    return JSONResponse(Run(svc.client, run_id).status())  # 404 for an unknown run


@router.get("/{run_id}/events", response_model=list[dict[str, Any]])
def events(run_id: str, svc: Svc) -> Response:
    """The run's history (``run.events()``): one object per transition, with its time."""
    with reachable(svc.client.url):
        svc.client.reads.require(run_id)  # 404 for an unknown run
        body = svc.client.reads.events_json(run_id)
    return Response(body, media_type="application/json")


@router.get("/{run_id}/plan", response_model=Plan)
def run_plan(run_id: str, svc: Svc) -> JSONResponse:
    """The compiled plan of the run's workflow version (``orch plan --json``): the console
    asks for it with the status and events, not after them."""
    with reachable(svc.client.url):
        ref = svc.client.reads.run_ref(run_id)
        if ref is None:
            raise svc.client.reads.missing(run_id)
    return JSONResponse(svc.plan_document(svc.workflow(ref)))


@router.post("/{run_id}/signals/{name}", response_model=Signalled)
def signal(run_id: str, name: str, svc: Svc, body: SignalBody | None = None) -> JSONResponse:
    """Send a signal: the steps waiting for it succeed with ``data`` (``orch signal``)."""
    data = body.data if body is not None else None
    completed = svc.client.signal(run_id, name, data)
    return JSONResponse({"id": run_id, "signal": name, "completed": completed})


@router.post("/{run_id}/cancel", response_model=CancelState)
def cancel(run_id: str, svc: Svc, body: CancelBody | None = None) -> JSONResponse:
    """Cancel a run: completed steps are compensated, it ends CANCELLED (idempotent)."""
    reason = body.reason if body is not None else ""
    return JSONResponse({"id": run_id, "state": svc.client.cancel(run_id, reason)})


@router.post("/{run_id}/retry", status_code=201, response_model=Resumed)
def retry(run_id: str, svc: Svc) -> JSONResponse:
    """Resume a FAILED run from its failed steps, as a new run (``orch retry``)."""
    resumed = svc.client.retry(run_id)
    return JSONResponse({"id": resumed.id, "resumed_from": run_id}, status_code=201)


@router.post("/{run_id}/compensate", response_model=RunStatus, response_model_exclude_unset=True)
def compensate(run_id: str, svc: Svc) -> JSONResponse:
    """Retry the compensation that failed for good, and carry the saga on."""
    return JSONResponse(svc.client.compensate(run_id).status())
