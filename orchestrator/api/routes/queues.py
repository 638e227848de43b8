"""Queues: the place for ``GET /api/queues`` (depth, lag and consumers per queue).

It is left empty on purpose: ``orch queues`` and the queueing model (priority,
fairness) are being built separately. When ``Client.queues()`` exists, its
document goes here as ``@router.get("")`` returning it, as every other route
returns its CLI document, and the console's Queues page reads it.
"""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/queues", tags=["queues"], responses=PROBLEM_RESPONSES)
