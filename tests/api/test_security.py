"""Security of the HTTP API: tokens beyond loopback, the body cap, CORS, no echoed secrets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from orchestrator import Client
from orchestrator.api.guard import is_loopback
from orchestrator.api.serve import ServerThread
from orchestrator.embedded import EmbeddedRedis
from tests.api.conftest import api_settings

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def guarded(redis_server: EmbeddedRedis) -> Iterator[str]:
    """A server that asks for a token, caps bodies at 1 KiB of payload, allows one origin."""
    settings = api_settings(
        redis_server.url,
        api_tokens=f"other-token, {TOKEN}",
        max_payload_bytes=1024,
        api_cors_origins="http://allowed.example",
    )
    client = Client(redis_server.url, settings=settings)
    server = ServerThread(client).start()
    yield server.url
    server.stop()
    client.close()


def test_every_api_route_asks_for_a_token(guarded: str) -> None:
    with httpx.Client(base_url=guarded) as http:
        for method, path in [("GET", "/api/runs"), ("POST", "/api/runs"), ("GET", "/api/metrics")]:
            resp = http.request(method, path, json={})
            assert resp.status_code == 401, (path, resp.text)
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert resp.headers["content-type"] == "application/problem+json"
            assert TOKEN not in resp.text
        wrong = http.get("/api/runs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = http.get("/api/runs", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        ok = http.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        # the console's files and the schema hold no secret: they are public
        assert http.get("/console/").status_code == 200
        assert http.get("/openapi.json").status_code == 200


def test_bodies_over_the_payload_limit_are_refused(guarded: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = b'{"workflow": "x", "input": {"text": "' + b"a" * 70_000 + b'"}}'
    with httpx.Client(base_url=guarded, headers=auth) as http:
        resp = http.post("/api/runs", content=big, headers={"content-type": "application/json"})
        assert resp.status_code == 413
        assert "ORCH_MAX_PAYLOAD_BYTES" in resp.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield big[:40_000]
            yield big[40_000:]

        streamed = http.post(
            "/api/runs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_cors_only_for_the_configured_origin(guarded: str, redis_server: EmbeddedRedis) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    with httpx.Client(base_url=guarded) as http:
        yes = http.options("/api/runs", headers={"Origin": "http://allowed.example", **preflight})
        assert yes.headers.get("access-control-allow-origin") == "http://allowed.example"
        no = http.options("/api/runs", headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in no.headers
    client = Client(redis_server.url, settings=api_settings(redis_server.url))
    server = ServerThread(client).start()
    try:
        resp = httpx.get(f"{server.url}/api/runs", headers={"Origin": "http://allowed.example"})
        assert resp.status_code == 200
        assert "access-control-allow-origin" not in resp.headers, "CORS is off by default"
    finally:
        server.stop()
        client.close()


def test_no_response_echoes_a_secret(redis_server: EmbeddedRedis) -> None:
    settings = api_settings(redis_server.url, api_tokens=TOKEN)
    client = Client(redis_server.url, settings=settings)
    server = ServerThread(client).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as http:
            bodies = [
                http.get(path).text
                for path in ("/api/runs", "/api/workflows", "/api/metrics", "/openapi.json")
            ]
            bodies.append(http.get("/api/runs/nope").text)
        for body in bodies:
            assert TOKEN not in body
    finally:
        server.stop()
        client.close()
    # the app's client refuses an unreachable Redis with a password without showing it
    down = api_settings("redis://:hunter2-pass@127.0.0.1:1/0", api_tokens=TOKEN)
    with pytest.raises(Exception) as refused:
        Client(settings=down)
    assert "hunter2" not in str(refused.value)


def test_serve_refuses_to_bind_beyond_loopback_without_tokens(redis_server: EmbeddedRedis) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "--host", "0.0.0.0", "--port", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"ORCH_REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "orch: error: --host 0.0.0.0: binding beyond loopback needs bearer tokens; set "
        "ORCH_API_TOKENS (comma-separated) or bind 127.0.0.1"
    ]
