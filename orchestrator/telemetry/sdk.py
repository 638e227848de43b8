"""Setting up the OpenTelemetry SDK from the standard ``OTEL_*`` variables, once per process.

The SDK is configured by its own configurator, the one ``opentelemetry-instrument``
and the distros run, so every ``OTEL_*`` variable means what OpenTelemetry's
documentation says (exporters, endpoints, protocol, headers, sampler,
resource, ``OTEL_SDK_DISABLED``...). Like the distro, the traces and metrics
exporters default to ``otlp`` when ``OTEL_TRACES_EXPORTER`` /
``OTEL_METRICS_EXPORTER`` are unset; set them to ``none`` to turn a signal off.

Nothing is set up when the SDK is not installed (only the API: everything
stays a no-op), or when the process already has a tracer or meter provider
(an application that set up OpenTelemetry itself keeps its own).

Celery's prefork children are forked before any task runs, and the hooks are
built in each child at its first task, so each child sets up its own SDK (and
its exporter threads) after the fork. A child forked later from a main
process that has set up the SDK inherits it, and the SDK's processors restart
their threads after a fork. Buffered spans and metrics are flushed when a pool
child exits (Celery's ``worker_process_shutdown``; a child leaves through
``os._exit``, which skips ``atexit``), when the worker shuts down, and at
interpreter exit.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics._internal import _ProxyMeterProvider

log = logging.getLogger("orchestrator.telemetry")

#: Defaults the distro applies too; an explicit value (``none`` included) wins.
DEFAULTS = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp"}


class _State:
    """This process's SDK: set up by us (here, or in the parent it was forked from)."""

    lock = threading.Lock()
    configured = False
    stopped_in: int | None = None  # the pid whose providers were shut down


def disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: OpenTelemetry's own switch for every signal."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def sdk_installed() -> bool:
    return importlib.util.find_spec("opentelemetry.sdk") is not None


def providers_set() -> bool:
    """Whether this process has a tracer or meter provider already."""
    tracing = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return tracing or not isinstance(metrics.get_meter_provider(), _ProxyMeterProvider)


def configure() -> bool:
    """Set up the SDK from ``OTEL_*`` unless absent or already set up; True when it did.

    Safe to call from every hook instance: only the first call in a process
    does anything.
    """
    with _State.lock:
        if _State.configured or disabled() or not sdk_installed() or providers_set():
            return False
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        # The SDK's own configurator (what opentelemetry-instrument runs); untyped.
        from opentelemetry.sdk import _configuration  # noqa: PLC0415

        configurator: Any = _configuration._OTelSDKConfigurator
        configurator().configure()
        _State.configured = True
    _flush_on_exit()
    return True


def _flush_on_exit() -> None:
    """Flush and stop the providers when a Celery pool child or worker ends."""
    from celery import signals  # noqa: PLC0415 - only a process that set up the SDK needs it

    signals.worker_process_shutdown.connect(shutdown, weak=False, dispatch_uid="orch-otel")
    signals.worker_shutdown.connect(shutdown, weak=False, dispatch_uid="orch-otel")


def shutdown(*_: Any, **__: Any) -> None:
    """Export what is buffered and stop the exporters (once per process)."""
    with _State.lock:
        if not _State.configured or _State.stopped_in == os.getpid():
            return
        _State.stopped_in = os.getpid()
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        stop = getattr(provider, "shutdown", None)
        if stop is not None:
            try:
                stop()
            except Exception:  # an exporter that cannot reach its collector must not block exit
                log.warning("telemetry shutdown failed", exc_info=True)
