"""OpenTelemetry traces and metrics, built on the engine hooks.

Turn it on with ``ORCH_HOOKS=orchestrator.telemetry:OpenTelemetry`` (producer
and workers) and ``pip install 'celery-orchestrator[otel]'``; the SDK is then
set up from the standard ``OTEL_*`` variables in each process (``sdk``).
This package imports only ``opentelemetry-api``; without the SDK the hook
disables itself and the hook chain leaves it out, so it costs nothing.

How a run's trace holds together across processes
-------------------------------------------------
A run outlives the call that submitted it, and its steps run in other
processes, so no one process can hold the run span open. Instead:

1. At submit, ``propagate()`` fixes the run span's identity: the trace of the
   producer's current span (a new trace when there is none), a fresh span id,
   the producer's span as its parent, and the start time. It carries the
   *run span's* ``traceparent`` (with ``tracestate`` and ``baggage``) and two
   fields of ours, ``orch-run-start`` and ``orch-run-parent``, in the run's
   context, which the engine stores with the run in Redis (``carrier``).
2. Every event of the run, in every process, hands that context back. Step
   attempt spans (message-started or run by a runner lane alike), wait spans
   and compensation spans extract their parent from it: the run span.
3. The run span itself is emitted by whichever process ends the run
   (``on_run_finished``), with the recorded start, under the producer's span,
   with the preset span id: our tracer's id generator is wrapped so that the
   next span it starts gets that id (``ids``). With only the API installed,
   nothing is started anywhere.

So the producer's span is the parent of the run span, which is the parent of
every attempt, wait and compensation span of the run. A wait starts in one
process (a worker) and ends in another (``client.signal``, or the timeout
sweep), so its span is emitted where it ends, starting ``waited`` seconds
earlier, as measured by the engine (``WaitEnded.waited``). The process that
ends a run must have the hook installed for the run span to exist (a client
that cancels a run, say); its children are exported either way.
"""

from __future__ import annotations

from orchestrator.telemetry.hook import OpenTelemetry
from orchestrator.telemetry.metrics import Metrics
from orchestrator.telemetry.traces import Traces

__all__ = ["Metrics", "OpenTelemetry", "Traces"]
