"""The Python entry point: submit workflows, follow runs, read their results.

Reads go through the store's light reader; the engine (scripts, compiler,
spec models) is made on first write, so ``orch status`` and ``orch runs``
start fast (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.checks import DataChecks, encode_value, redis_call
from orchestrator.clock import redis_now
from orchestrator.connection import connect, connect_reads, resolve_url
from orchestrator.contracts import warn_unchecked
from orchestrator.errors import (
    NotFoundError,
    OrchestratorError,
    ReadOnlyClientError,
    WorkflowConflictError,
)
from orchestrator.keys import Keys
from orchestrator.reports import Reports
from orchestrator.runs import TERMINAL, Run
from orchestrator.settings import Settings
from orchestrator.states import RunState
from orchestrator.store.reads import RunReader

if TYPE_CHECKING:
    import redis

    from orchestrator.compiler import Plan
    from orchestrator.leanredis import Conn
    from orchestrator.reporting import Reporter
    from orchestrator.schedules import Schedules
    from orchestrator.spec import Workflow
    from orchestrator.store import RunStore

__all__ = ["TERMINAL", "Client", "Run"]


class Client(Reports):
    """Connects to the orchestrator's Redis (``ORCH_REDIS_URL``, else the embedded one).

    ``read_only=True`` is for code that only reads (status, listings,
    metrics): it connects over ``LeanRedis`` where the URL allows, which
    spares redis-py's import (what ``orch status`` and ``orch runs`` do), and
    refuses every write with ``ReadOnlyClientError``.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        hooks: Iterable[object] = (),
        read_only: bool = False,
    ) -> None:
        self.settings = settings or Settings()
        self.url = redis_url or resolve_url(self.settings)
        self.report = _reporter(self.settings.hooks, hooks)
        self.read_only = read_only
        #: What reads go through: redis-py's client, or LeanRedis for a read-only client.
        self.conn: Conn = (connect_reads if read_only else connect)(self.url, self.settings)
        self.keys = Keys(self.settings.key_prefix)
        self.reads = RunReader(self.conn, self.keys)
        self._plans: dict[str, Plan] = {}
        self._registered: dict[str, Workflow] = {}  # the object each plan was made from

    @property
    def redis(self) -> redis.Redis:
        """redis-py's client, for writes (a read-only client refuses)."""
        import redis  # noqa: PLC0415 - loaded already, unless the client is read-only

        if self.read_only or not isinstance(self.conn, redis.Redis):
            raise ReadOnlyClientError(
                "this Client was opened with read_only=True and cannot write; "
                "open one without it to submit, signal, cancel or register"
            )
        return self.conn

    @cached_property
    def checks(self) -> DataChecks:
        """What is checked before a write (the contracts it has read, per version)."""
        return DataChecks(self.redis, self.keys, self.url)

    @cached_property
    def store(self) -> RunStore:
        """The run store with its engine, made on first write (it loads the scripts)."""
        from orchestrator.store import Observe, RunStore  # noqa: PLC0415

        return RunStore(
            self.redis,
            self.keys,
            run_ttl=self.settings.run_ttl,
            max_payload=self.settings.max_payload_bytes,
            observe=Observe.EVENTS if self.report is not None else Observe.NOTHING,
        )

    @cached_property
    def schedules(self) -> Schedules:
        """The schedules stored in Redis: add, list, pause, resume, remove, tick."""
        from orchestrator.schedules import Schedules  # noqa: PLC0415

        return Schedules(self)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def known(self, workflow: Workflow | str | Path) -> tuple[Workflow, Plan] | None:
        """The workflow and its plan when ``workflow`` is the very object this client
        registered: validated and hashed then, and frozen since, so a submit of it
        (the common case: one object, many runs) checks nothing again."""
        if isinstance(workflow, str | Path):
            return None
        ref = workflow.ref
        plan = self._plans.get(ref)
        if plan is None or self._registered.get(ref) is not workflow:
            return None
        return workflow, plan

    @redis_call
    def resolve(self, workflow: Workflow | str | Path) -> Workflow:
        """A ``Workflow``, a path to a YAML file, or the name of one submitted before."""
        from orchestrator.graph import validate  # noqa: PLC0415
        from orchestrator.loader import load_workflow  # noqa: PLC0415
        from orchestrator.spec import Workflow  # noqa: PLC0415

        if isinstance(workflow, Workflow):
            if self._registered.get(workflow.ref) is workflow:
                return workflow  # validated when it was registered, and frozen since
            return validate(workflow, visibility_timeout=self.settings.visibility_timeout)
        text = str(workflow)
        if isinstance(workflow, Path) or text.endswith((".yaml", ".yml", ".json")) or "/" in text:
            return load_workflow(text, visibility_timeout=self.settings.visibility_timeout)
        name, _, version = text.partition(":")
        return self.reads.workflow(name, int(version) if version.isdigit() else None)

    @redis_call
    def register(self, wf: Workflow) -> Plan:
        """Store a workflow version and its plan (idempotent; refuses changed content).

        Code the spec names is checked first where this process can import it:
        anything not marked ``@step``, or outside ``ORCH_TASK_MODULES``, is
        refused (``TaskRefusedError``). Code it cannot import is left to the
        workers, which refuse it when the step runs.
        """
        from orchestrator.store import outcomes as o  # noqa: PLC0415 - writes only

        cached = self._plans.get(wf.ref)
        if cached is not None and self._registered.get(wf.ref) is wf:
            return cached  # the same (frozen) object: no hash to compute (the HTTP API's case)
        if cached is not None and cached.content_hash == wf.content_hash:
            self._registered[wf.ref] = wf  # the same content: the next call takes the path above
            return cached
        from orchestrator.children import resolve_children  # noqa: PLC0415
        from orchestrator.compiler import compile_plan  # noqa: PLC0415
        from orchestrator.graph import check_steps  # noqa: PLC0415

        check_steps(wf, self.settings.task_module_prefixes)
        children = resolve_children(wf, self.reads.versions, self.reads.workflow)
        plan = compile_plan(wf, default_queue=self.settings.default_queue, children=children)
        if isinstance(self.store.engine.register(wf, plan), o.Conflict):
            raise WorkflowConflictError(
                f"version {wf.version} is already registered with different content; "
                "bump the version",
                where=f"workflow {wf.name!r}",
            )
        self._plans[wf.ref] = plan
        self._registered[wf.ref] = wf
        return plan

    @redis_call
    def submit(
        self,
        workflow: Workflow | str | Path,
        input: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        priority: int | None = None,
        fairness_key: str | None = None,
        deadline: float | str | None = None,
    ) -> Run:
        """Start a run; the same ``key`` always gives the same run.

        ``priority`` (0-9, higher runs sooner) defaults to the workflow's
        ``priority``, else 0; ``fairness_key`` (the run's tenant) to the input
        field the workflow's ``fairness.key`` names. A workflow at its
        ``max_queued`` refuses the run (``AdmissionRefusedError``), never a
        resubmit under an accepted ``key``. ``deadline`` (seconds, or a duration
        such as ``"1h"``) overrides the workflow's ``deadline:``: a run not ended
        by then is cancelled, with compensation, and its error says so.
        """
        from orchestrator import submission  # noqa: PLC0415

        pending = submission.prepare(
            self,
            workflow,
            input or {},
            key=key,
            priority=priority,
            fairness_key=fairness_key,
            deadline=deadline,
        )
        return submission.finish(self, pending, submission.send(self, pending, pending.plan))

    def forget_plans(self) -> None:
        """Forget what this client registered (Redis lost its data): it registers again."""
        self._plans.clear()

    @redis_call
    def run(self, run_id: str) -> Run:
        self.reads.run_fields(run_id)  # raises NotFoundError for an unknown id
        return Run(self, run_id)

    @redis_call
    def runs(
        self,
        *,
        limit: int = 20,
        workflow: str | None = None,
        state: str | None = None,
        stuck_after: float | None = None,
        fairness_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recent runs, newest first, as status documents.

        With ``stuck_after`` (seconds), only runs that look stuck are listed,
        each with a ``stuck`` reason (see ``Run.stuck``).
        """
        if state is not None and state not in {s.value for s in RunState}:
            allowed = ", ".join(s.value for s in RunState)
            raise OrchestratorError(f"unknown run state {state!r}; one of {allowed}")
        out: list[dict[str, Any]] = []
        now: list[float] = []  # Redis time, read once if a listed run has a deadline
        for run_id in self.reads.recent_runs(max(limit * 5, 100)):
            try:
                doc = Run(self, run_id).status()
            except NotFoundError:
                continue
            if (workflow and doc["workflow"] != workflow) or (state and doc["state"] != state):
                continue
            if fairness_key is not None and doc["fairness_key"] != fairness_key:
                continue
            if stuck_after is not None:
                reason = Run(self, run_id).stuck(stuck_after, doc)
                if reason is None:
                    continue
                doc["stuck"] = reason
            if doc.get("deadline_at") and doc["state"] not in TERMINAL:
                now = now or [redis_now(self.reads.redis)]
                doc["deadline_in"] = _epoch(doc["deadline_at"]) - now[0]
            out.append(doc)
            if len(out) >= limit:
                break
        return out

    @redis_call
    def signal(self, run_id: str, name: str, data: Any = None) -> list[str]:
        """Send signal ``name`` to a run: the steps waiting for it succeed with ``data``.

        Returns the steps it completed. The data is checked against the
        parameters it will feed, where the client can import their steps (or
        from their stored contracts).
        """
        from orchestrator.store import outcomes as o  # noqa: PLC0415 - writes only

        ref = self.reads.run_ref(run_id)
        if ref is None:
            raise self.reads.missing(run_id)
        wf = self.resolve(ref)
        waiting = [s for s, spec in wf.steps.items() if spec.wait_for == name]
        if not waiting:
            raise NotFoundError(f"run {run_id}: no step of {wf.ref} waits for signal {name!r}")
        payload = encode_value(data, self.settings.max_payload_bytes, where=f"signal {name!r}")
        unchecked = [self.checks.signal(wf, step, data) for step in waiting]
        outcome = self.store.engine.signal(run_id, name, payload)
        if isinstance(outcome, o.Signalled):
            for note in unchecked:
                warn_unchecked(note)
            if self.report is not None:
                from orchestrator.submission import waits as waits_of  # noqa: PLC0415

                waits = waits_of(self.register(wf))
                context = self.reads.context(run_id)
                self.report.decisions(run_id, wf.ref, outcome.decisions, waits, context)
            return list(outcome.steps)
        if isinstance(outcome, o.NotWaiting):
            now = ", ".join(f"{s} is {st}" for s, st in outcome.states.items())
            raise OrchestratorError(f"run {run_id}: no step waits for signal {name!r} now ({now})")
        state = outcome.state if isinstance(outcome, o.Stop) else "gone"
        raise OrchestratorError(f"run {run_id} is {state}")

    @redis_call
    def cancel(self, run_id: str, reason: str = "") -> str:
        """Cancel a run (idempotent); returns its state after the request."""
        from orchestrator.store import outcomes as o  # noqa: PLC0415 - writes only

        outcome = self.store.engine.cancel(run_id, reason)
        if isinstance(outcome, o.Gone):
            raise self.reads.missing(run_id)
        if isinstance(outcome, o.CancelRequested) and outcome.decisions and self.report is not None:
            ref = self.reads.run_ref(run_id)
            if ref is not None:
                context = self.reads.context(run_id)
                self.report.decisions(run_id, ref, outcome.decisions, context=context)
        return outcome.state

    @redis_call
    def retry(self, run_id: str) -> Run:
        """Resume a FAILED run from its failed steps, as a new run linked to it.

        Completed steps keep their outputs and are not run again; the new run
        uses the same workflow version. Resuming twice gives the same new run.
        """
        from orchestrator.store import outcomes as o  # noqa: PLC0415 - writes only

        outcome = self.store.engine.resume(run_id)
        if isinstance(outcome, o.Gone):
            raise self.reads.missing(run_id)
        if isinstance(outcome, o.WrongState):
            raise OrchestratorError(
                f"run {run_id} is {outcome.state}; only a FAILED run can be resumed"
            )
        return Run(self, outcome.run_id)

    @redis_call
    def compensate(self, run_id: str) -> Run:
        """Retry the compensation that failed for good in a run, and carry the saga on.

        The run is reopened (an operator's move, recorded as an event): the
        step whose compensation failed gets a fresh set of attempts, then the
        steps completed before it are undone, and the run ends COMPENSATED (or
        CANCELLED, for a cancelled run) or COMPENSATION_FAILED again.
        """
        from orchestrator.store import outcomes as o  # noqa: PLC0415 - writes only

        outcome = self.store.engine.recompensate(run_id)
        if isinstance(outcome, o.Gone):
            raise self.reads.missing(run_id)
        if isinstance(outcome, o.WrongState):
            raise OrchestratorError(
                f"run {run_id} is {outcome.state} with no failed compensation; only a run whose "
                "compensation failed (COMPENSATION_FAILED, or CANCELLED) can compensate again"
            )
        return Run(self, run_id)


def _reporter(setting: str, hooks: Iterable[object]) -> Reporter | None:
    """The client's hook reporter, or None (nothing loaded) when no hook is installed."""
    installed = list(hooks)
    if not setting and not installed:
        return None
    from orchestrator.hooks import HookChain, load_hooks  # noqa: PLC0415
    from orchestrator.reporting import Reporter  # noqa: PLC0415

    return Reporter(HookChain([*load_hooks(setting), *installed]))


def _epoch(rfc3339: str) -> float:
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(rfc3339).timestamp()
