"""Stopping a running step some time after its run was cancelled (``cancel_grace``).

A cancelled run first asks its running steps to stop: ``ctx.cancelled`` turns
true and a cooperative body returns early. A step with a grace period is not
left to cooperate forever:

1. when the grace period after the cancel is over, ``StepCancelled`` is raised
   in the step's thread. It is delivered by a signal, so a blocking sleep or
   socket read is interrupted too, and the body's ``finally`` blocks run;
2. a body that swallows it and is still running one more grace period later
   is recorded FAILED, and its worker process is killed (the prefork pool
   starts a new one), so a stuck body cannot hold the run's saga back.

One watcher thread per worker process polls the runs of the attempts it
guards; it exists only once a step with a grace period has run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from orchestrator.errors import StepCancelled
from orchestrator.store import Attempt, RunReader

log = logging.getLogger("orchestrator.cancellation")

#: The signal that interrupts a step; Celery's prefork children leave it alone
#: (SIGUSR1 is their soft time limit).
INTERRUPT = signal.SIGUSR2
POLL_SECONDS = 0.25

#: Set while a guarded body runs in the main thread: what to tell it. The
#: signal handler raises only while it is set, so a late signal is harmless.
_armed: list[str | None] = [None]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _armed[0] is not None:
        why, _armed[0] = _armed[0], None
        raise StepCancelled(why)


@dataclass
class _Guard:
    attempt: Attempt
    grace: float
    cancelled_at: float | None = None
    interrupted_at: float | None = None


class CancelWatch:
    """Interrupts, then terminates, step bodies that outlive their run's cancel.

    ``terminate`` records the attempt as failed and says whether that took (the
    body may have just ended); the watcher thread calls it before killing the
    process, and kills nothing when it did not take.
    """

    def __init__(self, reads: RunReader, terminate: Callable[[Attempt, float], bool]) -> None:
        self.reads = reads
        self._terminate = terminate
        self._guards: dict[str, _Guard] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._installed = False

    @contextmanager
    def guarding(self, attempt: Attempt, grace: float | None) -> Iterator[None]:
        """Run the block (a step body) under ``grace``; None leaves it alone."""
        if grace is None or not self._can_interrupt():
            yield
            return
        with self._lock:
            self._guards[attempt.token] = _Guard(attempt, grace)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="orch-cancel", daemon=True)
                self._thread.start()
        _armed[0] = f"its run was cancelled and its cancel_grace of {grace:g}s ran out"
        try:
            yield
        finally:
            _armed[0] = None
            with self._lock:
                self._guards.pop(attempt.token, None)

    def _can_interrupt(self) -> bool:
        """Signals reach only the main thread; other pools run steps without a grace."""
        if threading.current_thread() is not threading.main_thread():
            log.warning("cancel_grace needs steps on the main thread (the prefork pool)")
            return False
        if not self._installed:
            signal.signal(INTERRUPT, _interrupt)
            self._installed = True
        return True

    def _loop(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            with self._lock:
                guards = list(self._guards.values())
            for guard in guards:
                try:
                    self._check(guard, time.monotonic())
                except Exception:  # a Redis hiccup: look again at the next poll
                    log.exception("could not check run %s for a cancel", guard.attempt.run_id)

    def _check(self, guard: _Guard, now: float) -> None:
        if guard.cancelled_at is None:
            if self.reads.is_cancelling(guard.attempt.run_id):
                guard.cancelled_at = now
            return
        if guard.interrupted_at is None:
            if now >= guard.cancelled_at + guard.grace:
                guard.interrupted_at = now
                log.warning("interrupting %s: its run was cancelled", guard.attempt.lease_member())
                signal.pthread_kill(threading.main_thread().ident or 0, INTERRUPT)
            return
        if now < guard.interrupted_at + guard.grace:
            return
        with self._lock:
            if self._guards.pop(guard.attempt.token, None) is None:
                return  # the body has ended meanwhile
        if self._terminate(guard.attempt, 2 * guard.grace) and _in_pool_child():
            log.error("killing this worker process: %s ignored its interrupt", guard.attempt)
            os.kill(os.getpid(), signal.SIGKILL)


def _in_pool_child() -> bool:
    """True in a prefork child, which the pool replaces; never kill a worker's main process."""
    from billiard.process import current_process  # noqa: PLC0415 - only when killing

    return bool(current_process().name != "MainProcess")
