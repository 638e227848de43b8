"""Queues (``orch queues --json``): what waits, per queue, priority and fairness key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routes.deps import Svc

router = APIRouter(prefix="/api/queues", tags=["queues"], responses=PROBLEM_RESPONSES)


class QueueLevel(BaseModel):
    queue: str
    priority: int
    fairness_key: str | None
    held: bool = Field(description="Held back for fairness (not yet in the kombu list).")
    depth: int
    oldest_age: float | None = Field(description="Seconds the oldest message has waited.")


class Backlog(BaseModel):
    workflow: str
    fairness_key: str | None
    waiting: int = Field(description="Runs accepted and not started (admission control).")
    oldest_age: float | None


class ConcurrencyKey(BaseModel):
    workflow: str
    key: str
    running: int
    waiting: int = Field(description="Runs waiting for a slot, holding no worker.")


class Queues(BaseModel):
    queues: list[QueueLevel]
    backlogs: list[Backlog]
    concurrency: list[ConcurrencyKey]
    refused: dict[str, int] = Field(description="Submits refused, by workflow[:fairness key].")


@router.get("", response_model=Queues)
def queues(svc: Svc) -> JSONResponse:
    """Depth and oldest age per queue, priority and fairness key; backlogs; concurrency."""
    doc: dict[str, Any] = svc.client.queues()
    return JSONResponse(doc)
