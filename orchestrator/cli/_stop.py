"""One way to stop a foreground command, whatever stops it.

``orch dev``, ``orch flower`` and ``orch demo`` own child processes (the
embedded Redis, the workers, Flower) and stop them in ``finally`` blocks. Ctrl-C
reaches those blocks as ``KeyboardInterrupt``; a SIGTERM (``kill``, ``docker
stop``, systemd) or a SIGHUP (the terminal closed) used to end the process
at once instead, leaving the children running with parent PID 1.

``stop_signals`` turns SIGINT, SIGTERM and SIGHUP into the same ``Stopped``
exception (a ``KeyboardInterrupt``, so the Ctrl-C paths handle it), and then
ignores further ones while the clean-up runs, so that a second signal cannot
cut it short and leave half the children behind.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []


class Stopped(KeyboardInterrupt):
    """The command was asked to stop by a signal; its clean-up runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def _stop(signum: int, frame: FrameType | None) -> None:
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _received.append(signum)
    raise Stopped(signum)


def received() -> int | None:
    """The signal that stopped the command, if one did (Typer reports any as exit 130)."""
    return _received[-1] if _received else None


@contextmanager
def stop_signals() -> Iterator[None]:
    """While inside, SIGINT, SIGTERM and SIGHUP raise ``Stopped`` (once)."""
    previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
