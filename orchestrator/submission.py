"""One submit in two halves around its one script call.

``prepare`` checks and works out everything before the call (nothing is
written, so a refused value changes nothing); ``finish`` reads what the call
replied. ``Client.submit`` runs both around one call; the HTTP API puts the
calls of many concurrent submits into one Redis pipeline between them
(``orchestrator/api/batching.py``), so the halves stay the one definition of a
submit.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.checks import encode_input
from orchestrator.contracts import warn_unchecked
from orchestrator.errors import AdmissionRefusedError, SpecError
from orchestrator.runs import Run

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.compiler import Plan
    from orchestrator.spec import Workflow
    from orchestrator.store import outcomes as o
    from orchestrator.store.engine import SubmitOptions
    from orchestrator.store.inputs import SubmitArgs


@dataclass(frozen=True, slots=True)
class Pending:
    """A submit checked and ready for its script call."""

    wf: Workflow
    plan: Plan
    payload: str
    key: str | None
    carried: dict[str, str]
    priority: int
    tenant: str | None
    weight: float
    limited: str | None
    deadline: float | None
    unchecked: str | None

    def engine_args(self) -> SubmitOptions:
        """``Engine.submit``'s keyword arguments for this submit."""
        context = json.dumps(self.carried, separators=(",", ":")) if self.carried else ""
        return {
            "key": self.key,
            "context": context,
            "priority": self.priority,
            "fairness_key": self.tenant,
            "fairness_weight": self.weight,
            "concurrency_key": self.limited,
            "deadline": self.deadline,
        }


def prepare(
    client: Client,
    workflow: Workflow | str | Path,
    value: Mapping[str, Any],
    *,
    key: str | None,
    priority: int | None,
    fairness_key: str | None,
    deadline: float | str | None,
) -> Pending:
    """Resolve, check and register: everything a submit does before its script call."""
    from orchestrator.queueing import (  # noqa: PLC0415
        run_concurrency_key,
        run_fairness_key,
        run_priority,
    )
    from orchestrator.spec import positive_duration  # noqa: PLC0415

    seconds = positive_duration(deadline, where="submit, deadline")
    known = client.known(workflow)  # registered before, children and all
    wf = known[0] if known is not None else _resolve(client, workflow)
    level = run_priority(wf, priority)
    tenant = run_fairness_key(wf, value, fairness_key)
    limited = run_concurrency_key(wf, value)
    payload = encode_input(value, client.settings.max_payload_bytes)
    unchecked = client.checks.run_input(wf, value)
    plan = known[1] if known is not None else client.register(wf)
    return Pending(
        wf=wf,
        plan=plan,
        payload=payload,
        key=key,
        carried=client.report.chain.propagate() if client.report is not None else {},
        priority=level,
        tenant=tenant,
        weight=wf.fairness.weights.get(tenant, 1.0) if wf.fairness and tenant else 1.0,
        limited=limited,
        deadline=seconds if seconds is not None else wf.deadline,
        unchecked=unchecked,
    )


def _resolve(client: Client, workflow: Workflow | str | Path) -> Workflow:
    """The workflow to submit, its child workflows beside its file registered first."""
    wf = client.resolve(workflow)
    if any(spec.workflow for spec in wf.steps.values()):
        from orchestrator.loader import family_beside  # noqa: PLC0415

        for child in family_beside(workflow, wf, client.settings.visibility_timeout):
            client.register(child)
    return wf


def send(client: Client, pending: Pending, plan: Plan) -> o.Submitted | o.NoPlan | o.Refused:
    return client.store.engine.submit(plan, pending.payload, **pending.engine_args())


def call_args(client: Client, pending: Pending) -> tuple[SubmitArgs, str]:
    """The script call of ``pending`` (its arguments and new run id), for a pipeline."""
    engine = client.store.engine
    return engine.submit_args(pending.plan, pending.payload, **pending.engine_args())


def finish(client: Client, pending: Pending, submitted: o.Submitted | o.NoPlan | o.Refused) -> Run:
    """What follows the script's reply: the run, or why there is none."""
    from orchestrator.store import outcomes as o  # noqa: PLC0415 - writes only

    plan, wf = pending.plan, pending.wf
    if isinstance(submitted, o.NoPlan) and _data_lost(client):
        plan = client.register(wf)  # registered again in the new epoch
        submitted = send(client, pending, plan)
    if isinstance(submitted, o.NoPlan):
        raise SpecError(f"workflow {submitted.ref} is not registered")
    if isinstance(submitted, o.Refused):
        raise AdmissionRefusedError(
            wf.name, submitted.scope, submitted.limit, submitted.queued, pending.tenant or ""
        )
    if submitted.evicted:  # its slot went to this run at once; now it stops
        client.store.engine.cancel(submitted.evicted, "concurrency limit (cancel_oldest)")
    warn_unchecked(pending.unchecked)
    _report(client, plan, submitted, pending.key, pending.carried)
    return Run(client, submitted.run_id)


def _data_lost(client: Client) -> bool:
    """Whether Redis lost its data since this client last looked: then it says so,
    once and loudly, and forgets what it registered, so that it registers again."""
    from orchestrator.epoch import DataLostWarning  # noqa: PLC0415

    loss = client.store.engine.epochs.check()
    if loss is None:
        return False
    warnings.warn(loss.describe(), DataLostWarning, stacklevel=5)
    client.forget_plans()
    return True


def _report(
    client: Client, plan: Plan, submitted: o.Submitted, key: str | None, carried: dict[str, str]
) -> None:
    if client.report is None:
        return
    from orchestrator.hooks import RunSubmitted  # noqa: PLC0415

    if not submitted.created:  # an idempotent resubmit: the run carries its own context
        carried = client.reads.context(submitted.run_id)
    event = RunSubmitted(
        run_id=submitted.run_id,
        workflow=plan.workflow,
        version=plan.version,
        context=carried,
        key=key,
        created=submitted.created,
    )
    client.report.emit(event)
    client.report.decisions(submitted.run_id, plan.ref, submitted.decisions, waits(plan), carried)


def waits(plan: Plan) -> dict[str, tuple[str, float | None]]:
    """Signal and timeout of each wait_for step, for wait events."""
    return {
        name: (sp.wait_for, sp.wait_timeout)
        for name, sp in plan.steps.items()
        if sp.wait_for is not None
    }
