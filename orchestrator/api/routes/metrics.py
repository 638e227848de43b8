"""The scorecard (``orch metrics --json``): per workflow version, over a window, with a trend."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routes.deps import Svc
from orchestrator.scorecard.model import Scorecard

router = APIRouter(prefix="/api", tags=["metrics"], responses=PROBLEM_RESPONSES)


@router.get("/metrics", response_model=Scorecard)
def metrics(
    svc: Svc,
    workflow: Annotated[str | None, Query(max_length=110)] = None,
    window: Literal["1h", "24h", "7d", "30d"] = "1h",
    by: Literal["minute", "hour", "day"] | None = None,
) -> JSONResponse:
    """Success, retry burden, queue delay, handoffs, compensation and coverage, with trends."""
    card = svc.client.metrics(workflow or None, window=window, by=by)
    return JSONResponse(card.model_dump(mode="json"))


@router.get("/health", tags=["health"])
def health(svc: Svc) -> dict[str, bool]:
    """Answers when the server is up and Redis answers (503 when it does not)."""
    svc.client.reads.now()
    return {"ok": True}
