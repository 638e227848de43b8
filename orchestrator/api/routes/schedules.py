"""Schedules (``orch schedule ... --json``): cron-fired runs stored in Redis, fired by workers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.api.routes.deps import Svc

router = APIRouter(prefix="/api/schedules", tags=["schedules"], responses=PROBLEM_RESPONSES)

Name = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]


class ScheduleBody(BaseModel):
    """A schedule to store: the arguments of ``client.schedules.add`` by name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    workflow: str = Field(
        max_length=110, description="name[:version] of a registered workflow (never a file)."
    )
    cron: str = Field(max_length=200, description="Five cron fields, or six (leading seconds).")
    tz: str = Field(default="UTC", max_length=100, description="IANA time zone of the fields.")
    input: dict[str, Any] = Field(default_factory=dict)
    overlap: Literal["skip", "queue", "allow"] = "skip"
    catchup: int = Field(default=0, ge=0, description="Missed ticks to run late (the latest N).")


class Schedule(BaseModel):
    name: str
    workflow: str
    cron: str
    tz: str
    input: dict[str, Any]
    overlap: str
    catchup: int
    paused: bool
    next_at: str | None
    last_tick: str | None
    last_run: str | None
    skipped: int
    held: str | None
    error: str | None


class Changed(BaseModel):
    name: str
    changed: bool = Field(description="False when it was so already (paused, or active).")


@router.get("", response_model=list[Schedule])
def list_schedules(svc: Svc) -> JSONResponse:
    """Every schedule, by name: its definition, next tick, last run, paused or active."""
    return JSONResponse(svc.client.schedules.list())


@router.post("", status_code=201, response_model=Schedule)
async def add(body: ScheduleBody, svc: Svc) -> JSONResponse:
    """Store a schedule of a registered workflow version; 409 when the name is taken."""
    wf = svc.workflow(body.workflow)
    doc = await run_in_threadpool(
        svc.client.schedules.add,
        body.name,
        wf,
        body.cron,
        tz=body.tz,
        input=body.input,
        overlap=body.overlap,
        catchup=body.catchup,
    )
    return JSONResponse(doc, status_code=201, headers={"location": f"/api/schedules/{body.name}"})


@router.get("/{name}", response_model=Schedule)
def get(name: Name, svc: Svc) -> JSONResponse:
    return JSONResponse(svc.client.schedules.get(name))


@router.post("/{name}/pause", response_model=Changed)
def pause(name: Name, svc: Svc) -> JSONResponse:
    """Stop firing it; ticks that pass meanwhile are missed (see catchup)."""
    return JSONResponse({"name": name, "changed": svc.client.schedules.pause(name)})


@router.post("/{name}/resume", response_model=Changed)
def resume(name: Name, svc: Svc) -> JSONResponse:
    return JSONResponse({"name": name, "changed": svc.client.schedules.resume(name)})


@router.delete("/{name}", response_model=Changed)
def remove(name: Name, svc: Svc) -> JSONResponse:
    svc.client.schedules.remove(name)
    return JSONResponse({"name": name, "changed": True})
