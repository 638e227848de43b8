"""The app factory: one ``Client`` (one Redis pool) per app, the routers, the console.

FastAPI is imported here and only here (and in the routes), so ``import
orchestrator`` and ``orch status`` never load it: ``orch serve`` and ``orch
dev`` call ``create_app``.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.api import problems
from orchestrator.api.guard import BearerAuth, BodyCap
from orchestrator.api.models import SubmitBody
from orchestrator.api.routes import ROUTERS
from orchestrator.api.service import Service
from orchestrator.api.submitting import SubmitFastPath, problem_for
from orchestrator.errors import EXIT_USAGE, OrchestratorError

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.settings import Settings

#: Room in a request body beyond the payload it carries (the spec, the key, JSON syntax).
ENVELOPE_BYTES = 64 * 1024


def create_app(client: Client | None = None, *, settings: Settings | None = None) -> FastAPI:
    """The ASGI app: the HTTP API under ``/api``, the console under ``/console``."""
    if client is None:
        from orchestrator.client import Client  # noqa: PLC0415

        client = Client(settings=settings)
    settings = client.settings
    app = FastAPI(
        title="celery-orchestrator",
        version="1",
        description="Start workflows and follow their runs from any language; the bodies are "
        "the documents `orch ... --json` prints, errors are RFC 9457 problem details.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = Service(client)
    for router in ROUTERS:
        app.include_router(router)
    _handlers(app)
    _console(app)
    # added innermost first: CORS answers (and labels) even a refused request, then the
    # token is checked, then the body is read under its cap, then a submit is answered
    app.add_middleware(SubmitFastPath, service=app.state.service)
    app.add_middleware(BodyCap, limit=settings.max_payload_bytes + ENVELOPE_BYTES)
    tokens = settings.api_token_list
    if tokens:
        app.add_middleware(BearerAuth, tokens=tokens)
    if settings.api_cors_origins.strip():
        from fastapi.middleware.cors import CORSMiddleware  # noqa: PLC0415

        origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _problem(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type=problems.MEDIA_TYPE)


def _handlers(app: FastAPI) -> None:
    import redis  # noqa: PLC0415

    @app.exception_handler(OrchestratorError)
    @app.exception_handler(redis.RedisError)
    async def known_error(_: Request, exc: Exception) -> Response:
        return _problem(*(problem_for(exc) or (500, problems.unexpected(exc))))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        return _problem(422, problems.from_validation(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        detail = problems.one_line(str(exc.detail)) or "request refused"
        if detail == "There was an error parsing the body":
            detail = "request body: not valid JSON"
        body = problems.problem_body(exc.status_code, detail, EXIT_USAGE)
        return _problem(exc.status_code, body)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> Response:
        return _problem(500, problems.unexpected(exc))


def _console(app: FastAPI) -> None:
    folder = resources.files("orchestrator") / "console"
    app.mount("/console", StaticFiles(directory=str(folder), html=True), name="console")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console/")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with error responses typed as application/problem+json."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi  # noqa: PLC0415

    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    problem = {"$ref": "#/components/schemas/Problem"}
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {problems.MEDIA_TYPE: {"schema": problem}}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problems.Problem.model_json_schema()
    schemas["SubmitBody"] = SubmitBody.model_json_schema()  # read by the submit route itself
    app.openapi_schema = doc
    return doc
