"""The request's view of the app: its ``Service`` (one shared Client, one Redis pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orchestrator.api.service import Service


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


Svc = Annotated[Service, Depends(service)]
