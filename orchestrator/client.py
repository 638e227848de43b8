"""The Python entry point: submit workflows, follow runs, read their results."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import pydantic_core
import redis

from orchestrator.compiler import Plan, compile_plan
from orchestrator.connection import connect, redact, resolve_url
from orchestrator.errors import (
    HandoffError,
    NotFoundError,
    OrchestratorError,
    PayloadTooLargeError,
    RedisUnavailableError,
    RunFailedError,
    RunTimeoutError,
    SpecError,
    WorkflowConflictError,
)
from orchestrator.graph import check_steps, validate
from orchestrator.hooks import HookChain, RunSubmitted, load_hooks
from orchestrator.keys import Keys
from orchestrator.loader import load_workflow
from orchestrator.reporting import Reporter
from orchestrator.scorecard.model import Scorecard
from orchestrator.scorecard.report import Builder
from orchestrator.settings import Settings
from orchestrator.spec import Workflow
from orchestrator.states import RUN_TERMINAL, RunState
from orchestrator.steps import StepFunction, import_task
from orchestrator.store import RunStore
from orchestrator.store import outcomes as o

P = ParamSpec("P")
R = TypeVar("R")

#: Seconds `Run.wait` rides out an unreachable Redis before it reports it.
WAIT_PATIENCE = 15.0

#: The run states a run never leaves (from the transition table).
TERMINAL = frozenset(s.value for s in RUN_TERMINAL)


def _redis_call(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """Report a Redis that stops answering mid-call as ``RedisUnavailableError`` (exit 3).

    Every read and write is bounded by ``ORCH_CONNECT_TIMEOUT`` (see
    ``connection``), so a frozen Redis ends a call within that bound, with the
    same error whichever call it hit.
    """

    @functools.wraps(method)
    def call(owner: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        url = owner.url if isinstance(owner, Client) else owner.client.url
        with _reachable(url):
            return method(owner, *args, **kwargs)

    return call


class Client:
    """Connects to the orchestrator's Redis (``ORCH_REDIS_URL``, else the embedded one)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        hooks: Iterable[object] = (),
    ) -> None:
        self.settings = settings or Settings()
        self.url = redis_url or resolve_url(self.settings)
        chain = HookChain([*load_hooks(self.settings.hooks), *hooks])
        self.report = Reporter(chain)
        self.redis = connect(self.url, self.settings)
        self.store = RunStore(
            self.redis,
            Keys(self.settings.key_prefix),
            run_ttl=self.settings.run_ttl,
            max_payload=self.settings.max_payload_bytes,
            observe=bool(chain),
        )
        self._plans: dict[str, Plan] = {}

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_redis_call
    def resolve(self, workflow: Workflow | str | Path) -> Workflow:
        """A ``Workflow``, a path to a YAML file, or the name of one submitted before."""
        if isinstance(workflow, Workflow):
            return validate(workflow, visibility_timeout=self.settings.visibility_timeout)
        text = str(workflow)
        if isinstance(workflow, Path) or text.endswith((".yaml", ".yml", ".json")) or "/" in text:
            return load_workflow(text, visibility_timeout=self.settings.visibility_timeout)
        name, _, version = text.partition(":")
        return self.store.reads.workflow(name, int(version) if version.isdigit() else None)

    @_redis_call
    def register(self, wf: Workflow) -> Plan:
        """Store a workflow version and its plan (idempotent; refuses changed content).

        Code the spec names is checked first where this process can import it:
        anything not marked ``@step``, or outside ``ORCH_TASK_MODULES``, is
        refused (``TaskRefusedError``). Code it cannot import is left to the
        workers, which refuse it when the step runs.
        """
        cached = self._plans.get(wf.ref)
        if cached is not None and cached.content_hash == wf.content_hash:
            return cached
        check_steps(wf, self.settings.task_module_prefixes)
        plan = compile_plan(wf, default_queue=self.settings.default_queue)
        with _reachable(self.url):
            registered = self.store.engine.register(wf, plan)
        if isinstance(registered, o.Conflict):
            raise WorkflowConflictError(
                f"version {wf.version} is already registered with different content; "
                "bump the version",
                where=f"workflow {wf.name!r}",
            )
        self._plans[wf.ref] = plan
        return plan

    @_redis_call
    def submit(
        self,
        workflow: Workflow | str | Path,
        input: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        priority: int | None = None,
    ) -> Run:
        """Start a run; the same ``key`` always gives the same run."""
        del priority  # accepted for interface stability; queue priority is not yet applied
        wf = self.resolve(workflow)
        plan = self.register(wf)
        payload = _encode_input(input or {}, self.settings.max_payload_bytes)
        carried = self.report.chain.propagate() if self.report else {}
        context = json.dumps(carried, separators=(",", ":")) if carried else ""
        with _reachable(self.url):
            submitted = self.store.engine.submit(plan, payload, key=key, context=context)
        if isinstance(submitted, o.NoPlan):
            raise SpecError(f"workflow {submitted.ref} is not registered")
        self._report_submitted(plan, submitted, key, carried)
        return Run(self, submitted.run_id)

    def _report_submitted(
        self, plan: Plan, submitted: o.Submitted, key: str | None, carried: dict[str, str]
    ) -> None:
        if not self.report:
            return
        if not submitted.created:  # an idempotent resubmit: the run carries its own context
            carried = self.store.reads.context(submitted.run_id)
        event = RunSubmitted(
            run_id=submitted.run_id,
            workflow=plan.workflow,
            version=plan.version,
            context=carried,
            key=key,
            created=submitted.created,
        )
        self.report.emit(event)
        self.report.decisions(
            submitted.run_id, plan.ref, submitted.decisions, _waits(plan), carried
        )

    @_redis_call
    def run(self, run_id: str) -> Run:
        self.store.reads.run_fields(run_id)  # raises NotFoundError for an unknown id
        return Run(self, run_id)

    @_redis_call
    def runs(
        self,
        *,
        limit: int = 20,
        workflow: str | None = None,
        state: str | None = None,
        stuck_after: float | None = None,
    ) -> list[dict[str, Any]]:
        """Recent runs, newest first, as status documents.

        With ``stuck_after`` (seconds), only runs that look stuck are listed,
        each with a ``stuck`` reason (see ``Run.stuck``).
        """
        out: list[dict[str, Any]] = []
        for run_id in self.store.reads.recent_runs(max(limit * 5, 100)):
            try:
                doc = Run(self, run_id).status()
            except NotFoundError:
                continue
            if (workflow and doc["workflow"] != workflow) or (state and doc["state"] != state):
                continue
            if stuck_after is not None:
                reason = Run(self, run_id).stuck(stuck_after, doc)
                if reason is None:
                    continue
                doc["stuck"] = reason
            out.append(doc)
            if len(out) >= limit:
                break
        return out

    @_redis_call
    def signal(self, run_id: str, name: str, data: Any = None) -> list[str]:
        """Send signal ``name`` to a run: the steps waiting for it succeed with ``data``.

        Returns the steps it completed. The data is checked against the
        parameters it will feed, where the client can import their steps.
        """
        ref = self.store.reads.run_ref(run_id)
        if ref is None:
            raise NotFoundError(
                f"run {run_id!r} not found (unknown, or expired after ORCH_RUN_TTL)"
            )
        wf = self.resolve(ref)
        waiting = [s for s, spec in wf.steps.items() if spec.wait_for == name]
        if not waiting:
            raise NotFoundError(f"run {run_id}: no step of {wf.ref} waits for signal {name!r}")
        payload = _encode_value(data, self.settings.max_payload_bytes, where=f"signal {name!r}")
        for step in waiting:
            _check_signal_contract(wf, step, data)
        with _reachable(self.url):
            outcome = self.store.engine.signal(run_id, name, payload)
        if isinstance(outcome, o.Signalled):
            context = self.store.reads.context(run_id) if self.report else {}
            waits = _waits(self.register(wf))
            self.report.decisions(run_id, wf.ref, outcome.decisions, waits, context)
            return list(outcome.steps)
        if isinstance(outcome, o.NotWaiting):
            now = ", ".join(f"{s} is {st}" for s, st in outcome.states.items())
            raise OrchestratorError(f"run {run_id}: no step waits for signal {name!r} now ({now})")
        state = outcome.state if isinstance(outcome, o.Stop) else "gone"
        raise OrchestratorError(f"run {run_id} is {state}")

    @_redis_call
    def cancel(self, run_id: str, reason: str = "") -> str:
        """Cancel a run (idempotent); returns its state after the request."""
        outcome = self.store.engine.cancel(run_id, reason)
        if isinstance(outcome, o.Gone):
            raise NotFoundError(f"run {run_id!r} not found (unknown, or expired)")
        if isinstance(outcome, o.CancelRequested) and outcome.decisions:
            ref = self.store.reads.run_ref(run_id)
            if ref is not None:
                context = self.store.reads.context(run_id)
                self.report.decisions(run_id, ref, outcome.decisions, context=context)
        return outcome.state

    @_redis_call
    def retry(self, run_id: str) -> Run:
        """Resume a FAILED run from its failed steps, as a new run linked to it.

        Completed steps keep their outputs and are not run again; the new run
        uses the same workflow version. Resuming twice gives the same new run.
        """
        outcome = self.store.engine.resume(run_id)
        if isinstance(outcome, o.Gone):
            raise NotFoundError(f"run {run_id!r} not found (unknown, or expired)")
        if isinstance(outcome, o.WrongState):
            raise OrchestratorError(
                f"run {run_id} is {outcome.state}; only a FAILED run can be resumed"
            )
        return Run(self, outcome.run_id)

    @_redis_call
    def compensate(self, run_id: str) -> Run:
        """Retry the compensation that failed for good in a run, and carry the saga on.

        The run is reopened (an operator's move, recorded as an event): the
        step whose compensation failed gets a fresh set of attempts, then the
        steps completed before it are undone, and the run ends COMPENSATED (or
        CANCELLED, for a cancelled run) or COMPENSATION_FAILED again.
        """
        outcome = self.store.engine.recompensate(run_id)
        if isinstance(outcome, o.Gone):
            raise NotFoundError(f"run {run_id!r} not found (unknown, or expired)")
        if isinstance(outcome, o.WrongState):
            raise OrchestratorError(
                f"run {run_id} is {outcome.state} with no failed compensation; only a run whose "
                "compensation failed (COMPENSATION_FAILED, or CANCELLED) can compensate again"
            )
        return Run(self, run_id)

    @_redis_call
    def coverage(self, workflow: Workflow | str | Path) -> dict[str, Any]:
        """Branch coverage of a workflow version: which edges runs have taken."""
        wf = self.resolve(workflow)
        taken = self.store.reads.coverage(wf.ref)
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

    @_redis_call
    def stats(self, workflow: str, version: int) -> dict[str, int]:
        return self.store.reads.stats(f"{workflow}:{version}")

    def metrics(
        self, workflow: str | None = None, *, window: str = "1h", by: str | None = None
    ) -> Scorecard:
        """The scorecard (see ``orch metrics``): per version, over ``window``, with a trend.

        ``workflow`` is a name (every registered version) or ``name:version``;
        None gives every version that ran in the last 31 days.
        """
        reads = self.store.reads
        with _reachable(self.url):
            refs = self._metric_refs(workflow)
            return Builder(reads.scores, reads.shape).build(refs, window, by)

    def _metric_refs(self, workflow: str | None) -> list[str]:
        reads = self.store.reads
        if workflow is None:
            return sorted(reads.scores.active())
        name, _, version = workflow.partition(":")
        if version:
            if not version.isdigit() or int(version) not in reads.versions(name):
                raise NotFoundError(f"workflow {name!r} has no version {version}")
            return [f"{name}:{version}"]
        versions = reads.versions(name)
        if not versions:
            raise NotFoundError(f"workflow {name!r} has never been submitted")
        return [f"{name}:{v}" for v in versions]


class Run:
    """A handle on one run; cheap to create, every method reads Redis afresh."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self.id = run_id

    def __repr__(self) -> str:
        return f"Run({self.id!r})"

    @_redis_call
    def status(self) -> dict[str, Any]:
        """The status document (see ``orch status --json``)."""
        with _reachable(self.client.url):
            return self.client.store.reads.status(self.id)

    def state(self) -> str:
        return str(self.status()["state"])

    def cancel(self, reason: str = "") -> str:
        return self.client.cancel(self.id, reason)

    @_redis_call
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
        if doc["state"] in TERMINAL:
            return None
        reads = self.client.store.reads
        leases, delayed = reads.pending_work(self.id)
        last = reads.last_event_time(self.id)
        idle = reads.now() - last if last is not None else float("inf")
        if leases or delayed or idle < after:
            return None
        queued = [name for name, s in doc["steps"].items() if s["state"] == "QUEUED"]
        waiting_on = f"; queued steps {', '.join(queued)} were not picked up" if queued else ""
        return f"no progress for {idle:.0f}s{waiting_on} (is a worker consuming their queue?)"

    @_redis_call
    def events(self) -> list[dict[str, Any]]:
        return self.client.store.reads.events(self.id)

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
        with _reachable(self.client.url):
            for _ in self.client.store.reads.end_notices(self.id, deadline):
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


class _reachable:
    """Turn a Redis connection failure into ``RedisUnavailableError`` (exit 3)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            raise RedisUnavailableError(
                f"Redis at {redact(self.url)} is unreachable: {exc}"
            ) from None


def _encode_input(value: Mapping[str, Any], limit: int) -> str:
    if not isinstance(value, Mapping):
        raise SpecError("run input must be a JSON object", where="input")
    return _encode_value(value, limit, where="input")


def _encode_value(value: Any, limit: int, *, where: str) -> str:
    try:
        data = pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise SpecError(f"not JSON-serialisable: {exc}", where=where) from None
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"{where}: {len(data)} bytes, above ORCH_MAX_PAYLOAD_BYTES={limit}"
        )
    return data.decode()


def _waits(plan: Plan) -> dict[str, tuple[str, float | None]]:
    """Signal and timeout of each wait_for step, for wait events."""
    return {
        name: (sp.wait_for, sp.wait_timeout)
        for name, sp in plan.steps.items()
        if sp.wait_for is not None
    }


def _check_signal_contract(wf: Workflow, step: str, data: Any) -> None:
    """Refuse signal data a downstream step's annotation would refuse, when importable."""
    for name, spec in wf.steps.items():
        if step not in spec.upstreams or spec.task is None:
            continue
        try:
            fn = StepFunction.wrap(import_task(spec.task))
        except SpecError:
            continue  # the client does not ship this step's code; the worker will check
        try:
            fn.bind(name, {step: data}, {}, None, only=step)
        except HandoffError as exc:
            raise SpecError(f"signal data does not fit: {exc}", where=f"step {step!r}") from None
