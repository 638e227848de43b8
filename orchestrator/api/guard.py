"""What every request passes before a route sees it: the body cap and the bearer token.

Both are plain ASGI middleware, not FastAPI dependencies, so a refused
request costs no routing and no validation, and the cap holds for bodies sent
without a ``Content-Length`` (chunked) too.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from orchestrator.api.problems import MEDIA_TYPE, problem_body
from orchestrator.errors import EXIT_USAGE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may read: the console's files, the OpenAPI document, the health probe.
PUBLIC_PREFIXES = ("/console", "/openapi.json", "/docs", "/api/health")


def is_loopback(host: str) -> bool:
    """True for a host that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = problem_body(status, detail, EXIT_USAGE)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyCap:
    """Refuses (413) a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(send, 413, self._detail(), [])
            return
        body, complete = await self._read(receive)
        if not complete:
            await _refuse(send, 413, self._detail(), [])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The whole body, or (what was read, False) once it passes the cap."""
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts), True
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                return b"", False
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True

    def _detail(self) -> str:
        return f"request body: larger than {self.limit} bytes (ORCH_MAX_PAYLOAD_BYTES + envelope)"


class BearerAuth:
    """Asks every API request for one of ``tokens`` (``Authorization: Bearer ...``)."""

    def __init__(self, app: ASGIApp, tokens: tuple[str, ...]) -> None:
        self.app = app
        self.tokens = tuple(t.encode() for t in tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._public(scope) or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        await _refuse(
            send,
            401,
            "a bearer token is required (Authorization: Bearer TOKEN, one of ORCH_API_TOKENS)",
            [(b"www-authenticate", b'Bearer realm="orch"')],
        )

    @staticmethod
    def _public(scope: Scope) -> bool:
        path: str = scope["path"]
        return scope["method"] == "OPTIONS" or path == "/" or path.startswith(PUBLIC_PREFIXES)

    def _allowed(self, scope: Scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not given:
            return False
        # compare with every token, always, so timing does not tell which one nearly matched
        return any([hmac.compare_digest(given.strip(), t) for t in self.tokens])
