"""The HTTP API and the web console (``orch serve``; ``orch dev`` serves them too).

Nothing here is imported by ``import orchestrator``: FastAPI and uvicorn load
only when a server is made (``create_app``, ``serve``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.api.app import create_app as create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from orchestrator.api.app import create_app  # noqa: PLC0415

        return create_app
    raise AttributeError(name)
