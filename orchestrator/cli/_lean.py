"""Quick commands import redis-py without the OpenTelemetry metrics SDK.

From redis-py 7.2 on, ``import redis`` tries to import
``opentelemetry.sdk.metrics`` (for redis-py's own opt-in client metrics) and,
where the SDK is installed, as it is beside the orchestrator's telemetry, that
import costs more than the rest of ``orch status`` together. The quick
read-only commands (``READ_ONLY``) run no user code and never turn those
metrics on, so for them redis-py is imported while that one module is marked
absent (``sys.modules[name] = None`` makes its import raise ImportError, which
redis-py handles); the mark is removed at once, so anything imported later
finds the SDK as usual. Every other command (a worker, ``orch dev``, a submit
whose hooks trace) imports redis-py untouched.
"""

from __future__ import annotations

import sys

#: Commands that read Redis and print: they must start fast (issue: `orch runs` <= 0.35 s).
READ_ONLY = frozenset({"status", "runs", "queues"})
_SDK_METRICS = "opentelemetry.sdk.metrics"


def import_redis_lean(argv: list[str]) -> None:
    """For a read-only command, import redis-py before anything else can, SDK-free."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in READ_ONLY or "redis" in sys.modules or _SDK_METRICS in sys.modules:
        return
    sys.modules[_SDK_METRICS] = None  # type: ignore[assignment]
    try:
        import redis  # noqa: F401, PLC0415
    finally:
        del sys.modules[_SDK_METRICS]
