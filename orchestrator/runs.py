"""A handle on one run: its status, its events, waiting for its end, its result.

Everything here reads (through the client's ``RunReader``), so it needs
neither the engine nor the compiler; writing commands (cancel) go back
through the client.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from orchestrator.checks import reachable
from orchestrator.errors import RedisUnavailableError, RunFailedError, RunTimeoutError
from orchestrator.states import RUN_TERMINAL, RunState

if TYPE_CHECKING:
    from orchestrator.client import Client

#: Seconds `Run.wait` rides out an unreachable Redis before it reports it.
WAIT_PATIENCE = 15.0

#: The run states a run never leaves (from the transition table).
TERMINAL = frozenset(s.value for s in RUN_TERMINAL)


class Run:
    """A handle on one run; cheap to create, every method reads Redis afresh."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self.id = run_id

    def __repr__(self) -> str:
        return f"Run({self.id!r})"

    def status(self) -> dict[str, Any]:
        """The status document (see ``orch status --json``)."""
        with reachable(self.client.url):
            return self.client.reads.status(self.id)

    def tree(self, depth: int = 20) -> dict[str, Any]:
        """The status document with, under each child workflow step, its child runs' trees.

        Each such step gets ``runs``: the documents of its child runs (an
        expired child is left out), nested ``depth`` levels at most.
        """
        doc = self.status()
        if depth <= 0:
            return doc
        for entry in doc["steps"].values():
            kids = entry.get("children") or ([entry["child"]] if entry.get("child") else [])
            if kids:
                entry["runs"] = [t for t in (self._subtree(k, depth - 1) for k in kids) if t]
        return doc

    def _subtree(self, run_id: str, depth: int) -> dict[str, Any] | None:
        from orchestrator.errors import NotFoundError  # noqa: PLC0415

        try:
            return Run(self.client, run_id).tree(depth)
        except NotFoundError:
            return None

    def state(self) -> str:
        return str(self.status()["state"])

    def cancel(self, reason: str = "") -> str:
        return self.client.cancel(self.id, reason)

    def events(self) -> list[dict[str, Any]]:
        with reachable(self.client.url):
            return self.client.reads.events(self.id)

    def stuck(self, after: float, doc: dict[str, Any] | None = None) -> str | None:
        """Why the run looks stuck, or None when it has ended or is still moving.

        A run is stuck when it is not terminal, no attempt of it holds a live
        lease, none of its steps waits in the delayed set, and nothing has
        been recorded for ``after`` seconds: its queued messages were lost
        (for example a Redis restart without an fsynced AOF) or no worker
        consumes their queue. Idle time is measured by Redis's clock, the one
        the events were stamped with, so a client's clock error does not count.
        """
        doc = doc or self.status()
        if doc["state"] in TERMINAL or _waits_for_child(doc):
            return None
        reads = self.client.reads
        with reachable(self.client.url):
            leases, delayed = reads.pending_work(self.id)
            last = reads.last_event_time(self.id)
            idle = reads.now() - last if last is not None else float("inf")
        if leases or delayed or idle < after:
            return None
        queued = [name for name, s in doc["steps"].items() if s["state"] == "QUEUED"]
        if not queued:
            return f"no progress for {idle:.0f}s"
        waiting_on = (
            f"no progress for {idle:.0f}s; queued steps {', '.join(queued)} were not picked up"
        )
        idle_queues = self._unconsumed_queues(doc, queued)
        if idle_queues:
            names = ", ".join(idle_queues)
            return (
                f"{waiting_on}: no live worker consumes queue {names} "
                f"(start one with `orch worker -Q {','.join(idle_queues)}`)"
            )
        return (
            f"{waiting_on} (their queue has a live worker: a backlog, or messages lost "
            "in a Redis crash, which the workers send again after ORCH_REDISPATCH_AFTER)"
        )

    def _unconsumed_queues(self, doc: dict[str, Any], steps: list[str]) -> list[str]:
        """The queues of ``steps`` that no live worker consumes (workers beat their queues)."""
        client = self.client
        wf = client.reads.workflow(doc["workflow"], int(doc["version"]))
        default = client.settings.default_queue
        wanted = sorted({wf.steps[s].queue or default for s in steps if s in wf.steps})
        consumed = client.consumed_queues()
        return [q for q in wanted if q not in consumed]

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the run is terminal; returns its status document.

        A Redis outage shorter than ``WAIT_PATIENCE`` (a restart, a failover) is
        waited out rather than reported, since the run goes on regardless.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        outage_since: float | None = None
        while True:
            try:
                return self._wait_once(deadline, timeout)
            except RedisUnavailableError:
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since > WAIT_PATIENCE or (deadline is not None and now > deadline):
                    raise
                time.sleep(0.5)

    def _wait_once(self, deadline: float | None, timeout: float | None) -> dict[str, Any]:
        with reachable(self.client.url):
            for _ in self.client.reads.end_notices(self.id, deadline):
                doc = self.status()
                if doc["state"] in TERMINAL:
                    return doc
        raise RunTimeoutError(f"run {self.id} is still {self.state()} after {timeout}s")

    def result(self, timeout: float | None = None) -> Any:
        """The run's result; raises ``RunFailedError`` if it did not succeed."""
        doc = self.wait(timeout)
        if doc["state"] != RunState.SUCCEEDED:
            raise RunFailedError(f"run {self.id} ended {doc['state']}: {doc['error']}")
        return doc["result"]


def _waits_for_child(doc: dict[str, Any]) -> bool:
    """A step waits for a child run: whether that child moves is the child's to say."""
    return any(
        s["state"] in ("WAITING", "RUNNING") and (s.get("child") or s.get("children"))
        for s in doc["steps"].values()
    )
