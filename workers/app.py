"""The Celery app factory; ``celery -A workers.app worker`` works.

Importing this module creates nothing. The module-level ``app`` is built on
first access (PEP 562), from ``Settings()`` at that moment, so the Celery CLI
finds an app while tests and embedding code build their own with
``create_app(settings)``.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import TYPE_CHECKING, Any

from celery import Celery, Task, signals
from celery.exceptions import Reject

from orchestrator.compiler import STEP_TASK
from orchestrator.connection import connect, resolve_url
from orchestrator.errors import RedisUnavailableError
from orchestrator.hooks import HookChain, load_hooks
from orchestrator.keys import Keys
from orchestrator.messages import KOMBU_PRIORITY_STEPS
from orchestrator.settings import Settings
from orchestrator.store import Observe, RunStore
from workers.flower import LaneTaskEvents
from workers.runtime import StepRuntime
from workers.startup import install_start_checks
from workers.upkeeping import UpkeepLoop

if TYPE_CHECKING:
    from orchestrator.schedules import Schedules

log = logging.getLogger("orchestrator.worker")


def create_app(settings: Settings | None = None, *, redis_url: str | None = None) -> Celery:
    settings = settings or Settings()
    url = redis_url or resolve_url(settings)
    app = Celery("orchestrator", broker=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        # A lost worker is found by its attempt's expired lease, which counts the
        # attempt and bounds the retries; requeueing here would loop (celery#8969).
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.default_queue,
        # One list per priority level, polled in order (orchestrator.messages.priority_list).
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "priority_steps": KOMBU_PRIORITY_STEPS,
        },
        # kombu's Redis transport, riding through a crashed or full Redis (workers.broker).
        broker_transport="workers.broker:Transport",
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    holder = _RuntimeHolder(settings, url, app)

    # StepFailed is expected: the task is marked FAILURE (what Flower shows) without
    # a traceback in the log, since the failure is already recorded in the run.
    @app.task(name=STEP_TASK, bind=True, ignore_result=True, throws=(StepFailed,))  # type: ignore[untyped-decorator]
    def run_step(self: Task, run_id: str, ref: str, step: str, index: int | None) -> str:
        try:
            done = holder.runtime().execute(run_id, ref, step, index, self.request.hostname or "")
        except RedisUnavailableError as exc:
            # Nothing was recorded: give the message back rather than lose the step.
            raise Reject(str(exc), requeue=True) from None
        if done.failed:
            raise StepFailed(done.summary)
        return done.summary

    del run_step

    def note_task_events(sender: Any = None, **_: Any) -> None:
        # `-E` reaches the WorkController, not the config the pool's children inherit.
        owner = getattr(sender, "app", None)
        if owner is app and getattr(sender, "task_events", False):
            owner.conf.worker_send_task_events = True

    signals.worker_init.connect(note_task_events, weak=False)
    signals.worker_init.connect(_render_scripts, weak=False)
    _start_promoter_when_ready(app, holder)
    install_start_checks(app, settings, url)
    return app


def _render_scripts(**_: Any) -> None:
    """Assemble every Lua script in the main process, before the pool forks.

    Each child then inherits them rendered: a child's first step (the first
    after a child died, say) does not spend seconds assembling the library.
    """
    from orchestrator.store.inputs import BY_SCRIPT  # noqa: PLC0415
    from orchestrator.store.scripts import script_source  # noqa: PLC0415

    for name in BY_SCRIPT:
        script_source(name)


class StepFailed(Exception):
    """The step a message started failed for good; the run has recorded it already."""


class _RuntimeHolder:
    """One Redis client and runtime per process, created after the pool forks."""

    def __init__(self, settings: Settings, url: str, app: Celery) -> None:
        self.settings = settings
        self.url = url
        self.app = app
        self._runtime: StepRuntime | None = None
        self._pid = 0

    def schedules(self) -> Schedules:
        """The ticker's view of the schedules, for the worker's main process (see ticker.py)."""
        from orchestrator.client import Client  # noqa: PLC0415

        return Client(self.url, settings=self.settings).schedules

    def runtime(self) -> StepRuntime:
        import os  # noqa: PLC0415

        if self._runtime is None or self._pid != os.getpid():
            installed = load_hooks(self.settings.hooks)
            if self.app.conf.worker_send_task_events:  # `-E`: monitors see lane-run steps too
                installed.append(LaneTaskEvents(self.app))
            hooks = HookChain(installed)
            store = RunStore(
                connect(self.url, self.settings, who="worker-process"),
                Keys(self.settings.key_prefix),
                run_ttl=self.settings.run_ttl,
                max_payload=self.settings.max_payload_bytes,
                lease_seconds=self.settings.lease_seconds,
                observe=Observe.EVENTS if hooks else Observe.NOTHING,
            )
            self._runtime = StepRuntime(
                store,
                default_queue=self.settings.default_queue,
                runner_slice=self.settings.runner_slice,
                hooks=hooks,
            )
            self._pid = os.getpid()
            _freeze_what_lives_on()
        return self._runtime


def _freeze_what_lives_on() -> None:
    """Keep the garbage collector from rescanning what this process keeps until it ends.

    Celery, the app, the scripts and the hooks (the OpenTelemetry SDK with
    them) are built by now and live as long as the process. Telemetry's
    spans wait in the export queue long enough to be promoted, so a pool
    child that exports them runs full collections now and then, each
    rescanning some 100,000 such objects: about 0.25 s in which no step
    runs. Frozen, they are left out of every collection (about 10 ms).
    """
    gc.freeze()


def _start_promoter_when_ready(app: Celery, holder: _RuntimeHolder) -> None:
    """Run the upkeep loop (workers.upkeeping) in each worker's main process."""
    stop = threading.Event()

    amqp = app.amqp

    def on_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        hostname = str(getattr(sender, "hostname", "worker"))
        consumed = amqp.queues.consume_from.values()
        queues = ",".join(sorted(q.name for q in consumed))
        # The sender is the worker's consumer; its pool says how many processes run steps.
        pool = getattr(sender, "pool", None)
        concurrency = int(getattr(pool, "num_processes", 1) or 1)
        after = holder.settings.redispatch_after
        upkeep = UpkeepLoop(
            holder.runtime(),
            hostname,
            queues,
            concurrency,
            pool,
            redispatch_after=after,
            schedules=holder.schedules,
        )
        threading.Thread(target=upkeep.run, args=(stop,), name="orch-upkeep", daemon=True).start()
        port = holder.settings.metrics_port
        if port is not None:
            from orchestrator.scorecard.prometheus import serve  # noqa: PLC0415 - when asked

            serve(port, holder.runtime().store.reads, default_queue=holder.settings.default_queue)
            log.warning("serving the scorecard to Prometheus on port %d", port)

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        stop.set()

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)


_default: dict[str, Celery] = {}


def __getattr__(name: str) -> Celery:
    if name in ("app", "celery"):
        if "app" not in _default:
            _default["app"] = create_app()
        return _default["app"]
    raise AttributeError(name)
