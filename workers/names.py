"""Worker node names: unique by default, and a warning when two workers share one.

Celery names a worker ``celery@host`` unless told otherwise, so two workers on
one host share a name. Their liveness and capacity beats then collapse into
one: the runner sees half the processes there are and under-dispatches a
fan-out. ``orch worker`` (like ``WorkerPool``) therefore picks a unique name,
and every worker's beat notices a namesake, whoever named it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid

log = logging.getLogger("orchestrator.worker")

#: Seconds between two warnings about the same namesake.
WARN_EVERY = 60.0


def unique_node_name() -> str:
    """``orch-<8 hex>@%h``: Celery fills in the host, the hex tells workers apart."""
    return f"orch-{uuid.uuid4().hex[:8]}@%h"


class WorkerBeat:
    """The liveness beat of one worker (``P worker:{hostname}``), which notices a namesake.

    Each beat writes this worker's instance id and reads what was there. A
    value of another instance seen on two beats in a row means another live
    worker beats under the same name (one sighting may be a predecessor that
    just died, whose beat has not yet expired).
    """

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.instance = uuid.uuid4().hex
        self._sightings = 0
        self._warned_at: float | None = None

    def presence(self, queues: str) -> str:
        """What this worker writes under its name on each beat (``Upkeep.beat``)."""
        return json.dumps(
            {
                "queues": queues,
                "instance": self.instance,
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
        )

    def seen(self, previous: str | None) -> None:
        """Take note of what the beat replaced: a namesake's presence, twice running, warns."""
        other = self._namesake(previous)
        if other is None:
            self._sightings = 0
            return
        self._sightings += 1
        if self._sightings >= 2:
            self._warn(other)

    def _namesake(self, raw: bytes | str | None) -> dict[str, object] | None:
        """What another instance wrote under this name, or None if nobody else did."""
        if raw is None:
            return None
        try:
            found = json.loads(raw)
        except ValueError:
            return {}  # a worker that writes a plain value (an older version)
        if not isinstance(found, dict):
            return {}
        return None if found.get("instance") == self.instance else found

    def _warn(self, other: dict[str, object]) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
            return
        self._warned_at = now
        who = f"pid {other.get('pid', '?')} on {other.get('host', '?')}"
        log.warning(
            "another live worker (%s) beats under this worker's name %s: their capacity beats "
            "collapse into one and fan-outs are under-dispatched; give each worker its own "
            "name (-n), as `orch worker` does by default",
            who,
            self.hostname,
        )
