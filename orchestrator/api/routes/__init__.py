"""One router per concern; ``ROUTERS`` is what the app mounts, in this order."""

from __future__ import annotations

from orchestrator.api.routes import metrics, queues, runs, schedules, workflows

ROUTERS = (runs.router, workflows.router, metrics.router, queues.router, schedules.router)
