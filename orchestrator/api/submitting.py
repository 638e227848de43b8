"""``POST /api/runs``, the producers' hot path, answered as plain ASGI ahead of FastAPI.

A submit is one Redis round trip once its workflow is cached, and FastAPI's
routing, request object and exception middleware cost the server more CPU than
that (docs/BENCHMARKS.md). So the app's innermost middleware answers this one
request itself, with the same body, headers and problems as the route in
``routes/runs.py`` (which reads through the same ``submit_run`` and stays for
the OpenAPI document), and passes every other request on untouched. The body
cap and the bearer token still apply: their middleware wraps this one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from orchestrator.api import problems
from orchestrator.api.guard import ASGIApp, Receive, Scope, Send
from orchestrator.errors import EXIT_UNREACHABLE, OrchestratorError, SpecError

if TYPE_CHECKING:
    from orchestrator.api.service import Service

PATH = "/api/runs"


async def submit_run(svc: Service, raw: bytes, header: str | None) -> str:
    """Start the run a request body asks for; returns its id (errors are raised)."""
    from fastapi.concurrency import run_in_threadpool  # noqa: PLC0415

    from orchestrator.api.models import SubmitBody  # noqa: PLC0415

    body = SubmitBody.model_validate_json(raw)
    if header is not None and not 1 <= len(header) <= 200:
        raise SpecError("must be 1 to 200 characters", where="Idempotency-Key")
    if body.key and header and body.key != header:
        raise SpecError("the body's key and the Idempotency-Key header differ", where="key")
    if isinstance(body.workflow, dict):  # imports and compiles: off the event loop
        wf = await run_in_threadpool(svc.inline, body.workflow)
    else:
        wf = svc.workflow(body.workflow)
    run = await svc.batcher.submit(
        wf,
        body.input,
        key=body.key or header,
        priority=body.priority,
        fairness_key=body.fairness_key,
        deadline=body.deadline,
    )
    return run.id


def created(run_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The 201's headers and body, as the route's ``JSONResponse`` writes them."""
    body = json.dumps({"id": run_id}, separators=(",", ":")).encode()
    return [
        (b"location", f"{PATH}/{run_id}".encode()),
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
    ], body


def problem_for(exc: Exception) -> tuple[int, bytes] | None:
    """The problem the app's exception handlers answer ``exc`` with (None: not theirs)."""
    import redis  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    if isinstance(exc, OrchestratorError):
        return problems.from_error(exc)
    if isinstance(exc, ValidationError):
        return 422, problems.from_validation(list(exc.errors()))
    if isinstance(exc, redis.RedisError):
        line = f"Redis stopped answering: {problems.one_line(str(exc))}"
        return 503, problems.problem_body(503, line, EXIT_UNREACHABLE)
    return None


class SubmitFastPath:
    """Answers ``POST /api/runs``; anything else goes to ``app``."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = await _body(receive)
        header = _header(scope, b"idempotency-key")
        try:
            headers, body = created(await submit_run(self.service, raw, header))
            status = 201
        except Exception as exc:  # unexpected ones go on to the app's 500 handler
            found = problem_for(exc)
            if found is None:
                raise
            status, body = found
            headers = [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", problems.MEDIA_TYPE.encode()),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts)
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
