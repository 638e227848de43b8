"""The scorecard as returned by ``client.metrics()`` and printed by ``orch metrics --json``.

A stable, documented shape (README "Observability"): one entry per workflow
version, with the figures over the window, over the window before it (for
the change), and per bucket (the trend).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class QueueDelay(_Model):
    queue: str
    attempts: int
    p50: float | None
    p95: float | None
    p99: float | None


class EdgeScore(_Model):
    edge: str
    valid: int
    total: int
    accuracy: float | None


class Figures(_Model):
    runs: int
    ended: dict[str, int]
    success_rate: float | None
    first_attempts: int
    retries: int
    retry_burden: float | None
    failed_seconds: float
    queue_delay: list[QueueDelay]
    handoffs: list[EdgeScore]
    handoff_accuracy: float | None
    compensated: int
    compensation_rate: float | None
    compensations_failed: int
    edges: int
    edges_taken: int
    coverage: float | None


class Point(_Model):
    """One bucket of the trend."""

    start: datetime
    runs: int
    success_rate: float | None
    retry_burden: float | None
    queue_delay_p95: float | None
    handoff_accuracy: float | None
    compensation_rate: float | None
    coverage: float | None


class VersionScore(_Model):
    workflow: str
    version: int
    current: Figures
    previous: Figures
    trend: list[Point]


class Scorecard(_Model):
    window: str
    by: str
    start: datetime
    end: datetime
    versions: list[VersionScore]
