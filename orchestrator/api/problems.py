"""Errors as ``application/problem+json`` (RFC 9457), with the CLI's one-line messages.

The status follows what the CLI's exit code means: exit 2 (bad usage or spec)
becomes a 4xx chosen by the kind of error, exit 3 (Redis unreachable) 503,
exit 4 (admission control refused a submit) 429, and exit 1 (the run failed)
409. The ``detail`` is the same line ``orch`` prints after ``orch: error:``;
``exit_code`` says what the CLI would have exited with.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from orchestrator.errors import (
    EXIT_RUN_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AdmissionRefusedError,
    NotFoundError,
    OrchestratorError,
    PayloadTooLargeError,
    RedisUnavailableError,
    SpecError,
    TaskRefusedError,
    WorkflowConflictError,
)

MEDIA_TYPE = "application/problem+json"

#: Most specific first: the first class an error is an instance of decides its status.
STATUS_OF: tuple[tuple[type[OrchestratorError], int], ...] = (
    (NotFoundError, 404),
    (AdmissionRefusedError, 429),
    (TaskRefusedError, 403),
    (WorkflowConflictError, 409),
    (PayloadTooLargeError, 413),
    (SpecError, 422),
    (RedisUnavailableError, 503),
)


class Problem(BaseModel):
    """RFC 9457 problem details, with the CLI's exit code as an extension member."""

    type: str = Field(default="about:blank", description="Always about:blank: see title.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="One line naming what is wrong and where (as the CLI).")
    exit_code: int = Field(description="What the `orch` command would have exited with.")


def status_for(exc: OrchestratorError) -> int:
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return status
    if exc.exit_code == EXIT_UNREACHABLE:
        return 503
    return 409  # a request that is valid but not now: wrong run state, nothing waiting, ...


def problem_body(status: int, detail: str, exit_code: int) -> bytes:
    doc = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "exit_code": exit_code,
    }
    return json.dumps(doc).encode()


def one_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def from_error(exc: OrchestratorError) -> tuple[int, bytes]:
    status = status_for(exc)
    return status, problem_body(status, one_line(str(exc)), exc.exit_code)


def from_validation(errors: list[Any]) -> bytes:
    """A request that does not fit its schema: the first error, named by where it is."""
    first = errors[0] if errors else {}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return problem_body(422, f"{loc}: {message}", EXIT_USAGE)


def unexpected(exc: Exception) -> bytes:
    return problem_body(
        500, f"internal error: {type(exc).__name__}: {one_line(str(exc))}", EXIT_RUN_FAILED
    )


#: For every route's OpenAPI ``responses``: the problems any route may answer with.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "content": {MEDIA_TYPE: {}},
        "description": HTTPStatus(status).phrase,
    }
    for status in (400, 401, 403, 404, 409, 413, 422, 503)
}
