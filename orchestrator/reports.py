"""What a client reports without changing anything: coverage, queues, metrics, data losses.

A part of ``Client`` (its base class), kept apart so that the client module
stays about submitting and following runs. Every method reads through the
client's light ``RunReader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.checks import redis_call
from orchestrator.errors import NotFoundError

if TYPE_CHECKING:
    from orchestrator.keys import Keys
    from orchestrator.leanredis import Conn
    from orchestrator.scorecard.model import Scorecard
    from orchestrator.settings import Settings
    from orchestrator.spec import Workflow
    from orchestrator.store.reads import RunReader


class Reports:
    """The read-only reports of a ``Client`` (which provides the attributes below)."""

    url: str
    conn: Conn
    keys: Keys
    settings: Settings
    reads: RunReader

    def resolve(self, workflow: Workflow | str | Path) -> Workflow:
        raise NotImplementedError  # Client.resolve

    @redis_call
    def data_losses(self) -> list[str]:
        """One line per epoch whose data Redis lost, as the process that noticed recorded it."""
        from datetime import UTC, datetime  # noqa: PLC0415

        from orchestrator.epoch import lost  # noqa: PLC0415

        out = []
        for old, note in sorted(lost(self.conn, self.keys).items(), key=lambda kv: str(kv[1])):
            when = datetime.fromtimestamp(float(str(note["noticed"])), UTC)
            out.append(
                f"Redis lost its data: epoch {old} is gone with its runs "
                f"(noticed {when:%Y-%m-%d %H:%M:%S} UTC by {note['by']}; now epoch {note['now']})"
            )
        return out

    @redis_call
    def coverage(self, workflow: Workflow | str | Path) -> dict[str, Any]:
        """Branch coverage of a workflow version: which edges runs have taken."""
        wf = self.resolve(workflow)
        taken = self.reads.coverage(wf.ref)
        edges = [(up, name) for name in wf.steps for up in wf.steps[name].upstreams]
        never = [f"{up} → {name}" for up, name in edges if (up, name) not in taken]
        share = (len(edges) - len(never)) / len(edges) if edges else 1.0
        return {
            "workflow": wf.name,
            "version": wf.version,
            "edges": len(edges),
            "taken": len(edges) - len(never),
            "coverage": round(share, 4),
            "never_taken": never,
        }

    @redis_call
    def consumed_queues(self) -> set[str]:
        """Registered queues some live worker consumes, from the beats workers write."""
        return self.reads.consumed_queues()

    @redis_call
    def stats(self, workflow: str, version: int) -> dict[str, int]:
        return self.reads.stats(f"{workflow}:{version}")

    @redis_call
    def queues(self) -> dict[str, Any]:
        """What waits, per queue, priority and fairness key, and the backlogs (``orch queues``)."""
        from orchestrator.queueview import queue_document  # noqa: PLC0415

        return queue_document(self.reads, self.settings.default_queue)

    @redis_call
    def metrics(
        self, workflow: str | None = None, *, window: str = "1h", by: str | None = None
    ) -> Scorecard:
        """The scorecard (see ``orch metrics``): per version, over ``window``, with a trend.

        ``workflow`` is a name (every registered version) or ``name:version``;
        None gives every version that ran in the last 31 days.
        """
        from orchestrator.scorecard.report import Builder  # noqa: PLC0415

        return Builder(self.reads.scores, self.reads.shape).build(
            self._metric_refs(workflow), window, by
        )

    def _metric_refs(self, workflow: str | None) -> list[str]:
        if workflow is None:
            return sorted(self.reads.scores.active())
        name, _, version = workflow.partition(":")
        versions = self.reads.versions(name)
        if version:
            if not version.isdigit() or int(version) not in versions:
                raise NotFoundError(f"workflow {name!r} has no version {version}")
            return [f"{name}:{version}"]
        if not versions:
            raise NotFoundError(f"workflow {name!r} has never been submitted")
        return [f"{name}:{v}" for v in versions]
