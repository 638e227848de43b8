"""Celery task events for the steps a runner lane runs, so Flower shows every step.

A runner lane runs a run's next steps inside the Celery task of the message
that started the lane (see "How it runs on Celery" in the README), so Celery
itself reports only that first step. When the worker sends task events
(``-E``), this hook sends the same events Celery would for each step the lane
ran: received, started, then succeeded, retried or failed, under the step's
own task id (``{run}-{step}`` or ``{run}-{step}-{index}``, as a message of it
would have) and its ``workflow.step`` name. It is built on the engine hooks,
so it sees exactly what the engine decided.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from orchestrator.hooks import AttemptFinished, AttemptStarted, Hooks, Outcome

log = logging.getLogger("orchestrator.worker")

_FINAL = {
    Outcome.SUCCEEDED: "task-succeeded",
    Outcome.FALLBACK: "task-succeeded",
    Outcome.RETRYING: "task-retried",
    Outcome.FAILED: "task-failed",
}


def task_id(event: AttemptStarted | AttemptFinished) -> str:
    base = f"{event.run_id}-{event.step}"
    return base if event.index is None else f"{base}-{event.index}"


class LaneTaskEvents(Hooks):
    def __init__(self, app: Any) -> None:
        self.app = app

    def _send(self, event: AttemptStarted | AttemptFinished, kind: str, **fields: Any) -> None:
        try:
            with self.app.events.default_dispatcher(hostname=event.worker) as dispatcher:
                dispatcher.send(kind, uuid=task_id(event), timestamp=time.time(), **fields)
        except Exception:  # a monitor's trouble never stops a step
            log.warning("could not send %s for %s", kind, task_id(event), exc_info=True)

    def on_attempt_started(self, event: AttemptStarted) -> None:
        if not event.lane:
            return
        args = [event.run_id, f"{event.workflow}:{event.version}", event.step, event.index]
        self._send(
            event,
            "task-received",
            name=f"{event.workflow}.{event.step}",
            args=repr(args),
            kwargs="{}",
            retries=event.attempt - 1,
            root_id=event.run_id,
            parent_id=None,
            eta=None,
            expires=None,
        )
        self._send(event, "task-started")

    def on_attempt_finished(self, event: AttemptFinished) -> None:
        kind = _FINAL.get(Outcome(event.outcome)) if event.lane else None
        if kind is None:
            return
        if kind == "task-succeeded":
            self._send(event, kind, result="recorded", runtime=event.duration)
        else:
            self._send(event, kind, exception=event.error or "", traceback="")
