"""Hooks the hook tests install on real workers (``ORCH_HOOKS``) and on the client.

``Recorder`` writes every event it hears to a Redis list per run, so a test
can read, from its own process, what hooks heard in the worker processes.
``Raises`` fails on every event: the engine must go on regardless.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import redis

from orchestrator import Hooks
from orchestrator.hooks import RunEvent


def heard_key(run_id: str) -> str:
    return f"test:hooks:{run_id}"


def heard(r: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    """What the Recorder heard for one run, in order."""
    return [json.loads(e) for e in r.lrange(heard_key(run_id), 0, -1)]


class Recorder(Hooks):
    """Every event, as JSON: its hook name, its fields and the process that heard it.

    On the producer it also carries a context with each run it submits.
    """

    def __init__(self) -> None:
        self._redis: redis.Redis | None = None

    def propagate(self) -> dict[str, str]:
        return {"carried": "from the producer"}

    def _record(self, event: RunEvent) -> None:
        if self._redis is None:
            self._redis = redis.Redis.from_url(os.environ["ORCH_REDIS_URL"])
        fields = {
            f.name: getattr(event, f.name)
            for f in dataclasses.fields(event)
            if f.name != "exception"
        }
        fields["hook"] = event.hook
        fields["pid"] = os.getpid()
        exception = getattr(event, "exception", None)
        fields["exception"] = type(exception).__name__ if exception is not None else None
        self._redis.rpush(heard_key(event.run_id), json.dumps(fields))

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            return object.__getattribute__(self, "_record")
        return object.__getattribute__(self, name)


class Raises(Hooks):
    """A broken hook: every method raises."""

    def propagate(self) -> dict[str, str]:
        raise RuntimeError("broken hook cannot propagate")

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):

            def broken(event: RunEvent) -> None:
                raise RuntimeError(f"broken hook saw {type(event).__name__}")

            return broken
        return object.__getattribute__(self, name)
