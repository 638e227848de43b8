"""An engine hook that logs one line per attempt: the README's example, shipped.

Install it on workers with ``ORCH_HOOKS=orchestrator.examples.hooks:LogAttempts``.
"""

from __future__ import annotations

import logging

from orchestrator.hooks import AttemptFinished, Hooks

log = logging.getLogger("orchestrator.examples.attempts")


class LogAttempts(Hooks):
    def on_attempt_finished(self, event: AttemptFinished) -> None:
        log.warning(
            "%s v%d %s[%s] attempt %d %s in %.3fs (waited %.3fs)",
            event.workflow,
            event.version,
            event.step,
            event.index,
            event.attempt,
            event.outcome,
            event.duration,
            event.queue_delay or 0.0,
        )
