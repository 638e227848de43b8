"""The request and response documents, for the OpenAPI schema and request validation.

Responses are the CLI's ``--json`` documents, built by the same functions
(``status_document``, ``plan_document``, ``graph_document``, ...): these
models describe them for ``/openapi.json`` (and schemathesis checks every
response against them); they do not rebuild them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SubmitBody(BaseModel):
    """A run to start: the arguments of ``Client.submit`` by name."""

    model_config = ConfigDict(extra="forbid")

    workflow: str | dict[str, Any] = Field(
        description="The name[:version] of a registered workflow, or a workflow spec document "
        "(the YAML's content as JSON; it may name only steps the server can import, inside "
        "ORCH_TASK_MODULES)."
    )
    input: dict[str, Any] = Field(default_factory=dict, description="The run input.")
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Idempotency key: the same key gives the same run (also the "
        "Idempotency-Key header).",
    )
    priority: int | None = Field(
        default=None, ge=0, le=9, description="0-9, higher runs sooner (default: the spec's)."
    )
    fairness_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The run's tenant (default: from the spec's fairness.key).",
    )
    deadline: float | str | None = Field(
        default=None,
        description="Cancel the run (with compensation) if not ended within this many seconds "
        "or this duration (90s, 30m, 1h); overrides the spec's deadline.",
    )


class Submitted(BaseModel):
    id: str


class Compensation(BaseModel):
    attempts: int
    queued_at: str | None
    started_at: str | None
    finished_at: str | None


class StepStatus(BaseModel):
    state: str
    attempts: int
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    output: Any
    elements: int | None = Field(default=None, description="A map step's element count.")
    elements_left: int | None = Field(default=None, description="Its elements not yet done.")
    fallback: bool | None = None
    compensation: Compensation | None = None


class RunSummary(BaseModel):
    """A run as ``orch runs --json`` lists it (no steps)."""

    id: str
    workflow: str
    version: int
    state: str
    input: Any
    result: Any
    error: str | None
    created_at: str | None
    finished_at: str | None
    stuck: str | None = Field(default=None, description="Why it looks stuck (stuck=true).")


class RunStatus(RunSummary):
    """``orch status --json``."""

    steps: dict[str, StepStatus]


class SignalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Any = Field(default=None, description="The waiting steps' output.")


class Signalled(BaseModel):
    id: str
    signal: str
    completed: list[str]


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class CancelState(BaseModel):
    id: str
    state: str


class Resumed(BaseModel):
    id: str
    resumed_from: str


class WorkflowVersions(BaseModel):
    name: str
    versions: list[int]


class VersionInfo(BaseModel):
    version: int
    hash: str
    steps: int
    description: str | None


class WorkflowInfo(BaseModel):
    name: str
    versions: list[VersionInfo]


class Validated(BaseModel):
    valid: bool
    workflow: str
    version: int
    steps: int
    hash: str
    imported: bool


class SpecBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] = Field(description="A workflow spec document.")


class Edge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    map: bool


class Graph(BaseModel):
    workflow: str
    version: int
    nodes: list[str]
    edges: list[Edge]


class PlanStep(BaseModel):
    task: str | None
    queue: str
    after: list[str]
    join: int
    then: list[str]
    map: str | None
    wait_for: str | None


class Plan(BaseModel):
    workflow: str
    version: int
    hash: str
    roots: list[str]
    finals: list[str]
    steps: dict[str, PlanStep]
    canvas: list[dict[str, Any]]


class Coverage(BaseModel):
    workflow: str
    version: int
    edges: int
    taken: int
    coverage: float
    never_taken: list[str]


class Health(BaseModel):
    ok: bool
