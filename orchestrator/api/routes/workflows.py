"""Registered workflows: their versions, and validate, plan, graph and coverage of one.

The documents are ``orch validate/plan/graph/coverage --json``, built by the
CLI's own builders.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from orchestrator.api.models import (
    Coverage,
    Graph,
    Plan,
    SpecBody,
    Validated,
    WorkflowInfo,
    WorkflowVersions,
)
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routes.deps import Svc
from orchestrator.errors import NotFoundError

router = APIRouter(prefix="/api/workflows", tags=["workflows"], responses=PROBLEM_RESPONSES)

Name = Annotated[str, Path(max_length=100)]
Version = Annotated[int, Path(ge=1, le=10**9)]


@router.get("", response_model=list[WorkflowVersions])
def list_workflows(svc: Svc) -> JSONResponse:
    """Every registered workflow and its versions."""
    reads = svc.client.reads
    return JSONResponse(
        [{"name": n, "versions": reads.versions(n)} for n in reads.workflow_names()]
    )


@router.get("/{name}", response_model=WorkflowInfo)
def workflow(name: Name, svc: Svc) -> JSONResponse:
    """A workflow's versions, each with its content hash, step count and description."""
    versions = svc.client.reads.versions(name)
    if not versions:
        raise NotFoundError(f"workflow {name!r} has never been submitted")
    out = []
    for v in versions:
        wf = svc.workflow(f"{name}:{v}")
        out.append(
            {
                "version": v,
                "hash": wf.content_hash,
                "steps": len(wf.steps),
                "description": wf.description,
            }
        )
    return JSONResponse({"name": name, "versions": out})


def _version(name: str, version: int) -> str:
    return f"{name}:{version}"


@router.get("/{name}/versions/{version}/validate", response_model=Validated)
def validate(name: Name, version: Version, svc: Svc) -> JSONResponse:
    """``orch validate --json`` of a registered version (structure; imports are the workers')."""
    from orchestrator.cli._spec import validate_document  # noqa: PLC0415
    from orchestrator.graph import validate as check  # noqa: PLC0415

    wf = check(svc.workflow(_version(name, version)))
    return JSONResponse(validate_document(wf, imported=False))


@router.post("/validate", response_model=Validated)
def validate_spec(body: SpecBody, svc: Svc) -> JSONResponse:
    """Validate a spec document without registering it (its code is checked as on submit)."""
    from orchestrator.cli._spec import validate_document  # noqa: PLC0415

    return JSONResponse(validate_document(svc.inline(body.workflow), imported=True))


@router.get("/{name}/versions/{version}/plan", response_model=Plan)
def plan(name: Name, version: Version, svc: Svc) -> JSONResponse:
    """The compiled plan (``orch plan --json``): dispatch per step and the canvas."""
    return JSONResponse(svc.plan_document(svc.workflow(_version(name, version))))


@router.get("/{name}/versions/{version}/graph", response_model=Graph)
def graph(name: Name, version: Version, svc: Svc) -> JSONResponse:
    """Nodes and edges (``orch graph --json``), map edges marked."""
    from orchestrator.cli._spec import graph_document  # noqa: PLC0415

    return JSONResponse(graph_document(svc.workflow(_version(name, version))))


@router.get("/{name}/versions/{version}/coverage", response_model=Coverage)
def coverage(name: Name, version: Version, svc: Svc) -> JSONResponse:
    """Branch coverage (``orch coverage --json``): the edges no run has taken yet."""
    return JSONResponse(svc.client.coverage(svc.workflow(_version(name, version))))
