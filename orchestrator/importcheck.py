"""The worker start-up import check: can this worker run the steps routed to it?

Scope: every registered workflow version with a step routed to one of the
worker's queues; only those steps' functions (task, fallback, ``when``,
compensation) are imported, and their parameters checked for fill. A version
that passes has its step contracts stored (``orchestrator.contracts``), so
clients without the code can check inputs and signals.

Failure mode, ``ORCH_IMPORT_CHECK`` (or ``orch worker --import-check``):

- ``strict`` (the default): refuse to start, exit 2, naming the workflow, step
  and field. At a terminal this is what you want: a worker that cannot run
  part of what it is sent should not look healthy.
- ``warn``: log one line per version that cannot be imported and start
  anyway. Steps of such a version fail on this worker if they reach it. This
  fits a container under a restart policy, where ``strict`` would crash-loop
  as long as Redis holds a workflow whose code is not in the image (compose
  sets it).
- ``off``: no check (also ``--no-check``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from orchestrator.errors import OrchestratorError, SpecError
from orchestrator.keys import Keys

if TYPE_CHECKING:
    import redis

    from orchestrator.spec import Workflow

Mode = Literal["strict", "warn", "off"]


@dataclass
class CheckReport:
    """Versions that passed, and (in ``warn`` mode) why the others failed."""

    checked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def registered(client: redis.Redis, keys: Keys) -> Iterator[Workflow]:
    """Every registered workflow version."""
    from orchestrator.spec import Workflow  # noqa: PLC0415

    for key in client.scan_iter(match=keys.workflow("*"), count=500):
        for raw in client.hvals(key):
            yield Workflow.from_json(raw)


def check_worker_imports(
    client: redis.Redis, keys: Keys, *, queues: set[str], default_queue: str, mode: Mode
) -> CheckReport:
    """Run the check in ``mode``; raise (strict) or log (warn) what cannot be imported."""
    from orchestrator import contracts  # noqa: PLC0415
    from orchestrator.graph import check_imports  # noqa: PLC0415

    report = CheckReport()
    if mode == "off":
        return report
    store = contracts.ContractStore(client, keys)
    for wf in registered(client, keys):
        routed = [n for n, s in wf.steps.items() if (s.queue or default_queue) in queues]
        if not routed:
            continue
        try:
            check_imports(wf, routed)
            store.save(wf, contracts.from_imports(wf, routed))
        except SpecError as exc:
            if mode == "strict":
                raise OrchestratorError(
                    f"workflow {wf.ref}: {exc} (set ORCH_IMPORT_CHECK=warn to start anyway)"
                ) from None
            report.failed[wf.ref] = str(exc)
            continue
        report.checked.append(wf.ref)
    return report
