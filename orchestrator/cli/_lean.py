"""The quick commands start lean: only their own command module, and no redis-py.

``orch status`` and ``orch runs`` are what people and scripts call most, so
they are held to 0.35 s from process start (docs/BENCHMARKS.md). Two costs
there are not the orchestrator's own:

- Typer builds the parameters of every registered command on every call,
  evaluating their annotations: about 20 ms for all of them. A quick command
  loads only the module that registers it (``QUICK``), so only that module's
  commands are built. Every other command, and ``orch --help``, loads them all.
- redis-py's import costs 80-100 ms, so the read-only commands (``READ_ONLY``)
  open a read-only ``Client``, which reads over ``LeanRedis`` (leanredis.py)
  wherever it can serve the URL: ``redis://`` or ``unix://`` without options.
- For other URLs (``rediss://``, options) they import redis-py after all, and
  there a second cost applies. From redis-py 7.2 on, ``import redis`` tries
  to import OpenTelemetry's metrics API and SDK (``OTEL_METRICS``) for
  redis-py's own opt-in client metrics. Where the SDK is installed (beside
  the orchestrator's telemetry) that costs more than the rest of ``orch
  status`` together, and the API alone still costs about 20 ms (it reads
  package metadata). The read-only commands run no user code and never turn
  those metrics on, so for them redis-py is imported while those modules are
  marked absent (``sys.modules[name] = None`` makes their import raise
  ImportError, which redis-py handles). The marks are removed at once, so
  anything imported later finds OpenTelemetry as usual. Every other command
  imports redis-py untouched.
"""

from __future__ import annotations

import importlib
import os
import sys

#: Every module that registers commands on the app.
COMMAND_MODULES = ("_dev", "_flower", "_metrics", "_queues", "_run", "_schedule", "_serve", "_spec")
#: Quick commands, by the module that registers them. A module registering a single
#: command cannot be one: Typer would run that command in place of the group.
QUICK = {"status": "_run", "runs": "_run"}
#: Commands that read Redis and print.
READ_ONLY = frozenset({"status", "runs", "queues"})
#: What redis-py imports for its own client metrics, kept out for READ_ONLY commands.
OTEL_METRICS = ("opentelemetry.sdk.metrics", "opentelemetry.metrics")


def command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (its first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def load_commands(argv: list[str]) -> None:
    """Register the quick command's module alone, or every command module."""
    quick = QUICK.get(command_of(argv) or "")
    for name in (quick,) if quick else COMMAND_MODULES:
        importlib.import_module(f"orchestrator.cli.{name}")


def needs_redis_py(url: str) -> bool:
    """Whether a read-only client would fall back to redis-py for ``url`` (unset: the
    embedded server's, which ``LeanRedis`` serves)."""
    from orchestrator.connection import lean_client  # noqa: PLC0415

    return bool(url) and lean_client(url, 1.0) is None


def import_redis_lean(argv: list[str]) -> None:
    """For a read-only command that will need redis-py, import it first, OpenTelemetry-free."""
    if command_of(argv) not in READ_ONLY or "redis" in sys.modules:
        return
    if not needs_redis_py(os.environ.get("ORCH_REDIS_URL", "")):
        return
    if any(name in sys.modules for name in OTEL_METRICS):
        return
    for name in OTEL_METRICS:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import redis  # noqa: F401, PLC0415
    finally:
        for name in OTEL_METRICS:
            del sys.modules[name]
