"""The Python entry point: submit workflows, follow runs, read their results."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from orchestrator.checks import DataChecks, encode_input, encode_value, reachable
from orchestrator.connection import connect, resolve_url
from orchestrator.contracts import warn_unchecked
from orchestrator.errors import (
    NotFoundError,
    OrchestratorError,
    RedisUnavailableError,
    RunFailedError,
    RunTimeoutError,
)
from orchestrator.keys import Keys
from orchestrator.settings import Settings
from orchestrator.states import RunState
from orchestrator.status import status_document

if TYPE_CHECKING:
    from orchestrator.compiler import Plan
    from orchestrator.spec import Workflow
    from orchestrator.store import RunStore

# The spec models, the compiler and step imports are loaded by the methods that
# need them: `orch status` and `orch runs` only read Redis (see docs/BENCHMARKS.md).

#: Seconds `Run.wait` rides out an unreachable Redis before it reports it.
WAIT_PATIENCE = 15.0

TERMINAL = {
    s.value
    for s in (
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.COMPENSATED,
        RunState.COMPENSATION_FAILED,
        RunState.CANCELLED,
    )
}


class Client:
    """Connects to the orchestrator's Redis (``ORCH_REDIS_URL``, else the embedded one)."""

    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.url = redis_url or resolve_url(self.settings)
        self.redis = connect(self.url, self.settings)
        self.keys = Keys(self.settings.key_prefix)
        self._plans: dict[str, Plan] = {}
        self.checks = DataChecks(self.redis, self.keys, self.url)

    @cached_property
    def store(self) -> RunStore:
        """The run store, made on first use: it loads the compiler and the spec models,
        which ``orch status`` and ``orch runs`` do without (they read the run hash)."""
        from orchestrator.store import RunStore  # noqa: PLC0415

        return RunStore(
            self.redis,
            self.keys,
            run_ttl=self.settings.run_ttl,
            max_payload=self.settings.max_payload_bytes,
        )

    def _run_fields(self, run_id: str) -> dict[str, str]:
        """A run's hash as stored (what ``RunStore.run_fields`` reads), without the store."""
        with reachable(self.url):
            raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.run(run_id)))
        if not raw:
            raise NotFoundError(
                f"run {run_id!r} not found (unknown, or expired after ORCH_RUN_TTL)"
            )
        return {k.decode(): v.decode() for k, v in raw.items()}

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, workflow: Workflow | str | Path) -> Workflow:
        """A ``Workflow``, a path to a YAML file, or the name of one submitted before."""
        from orchestrator.graph import validate  # noqa: PLC0415
        from orchestrator.loader import load_workflow  # noqa: PLC0415
        from orchestrator.spec import Workflow  # noqa: PLC0415

        if isinstance(workflow, Workflow):
            return validate(workflow, visibility_timeout=self.settings.visibility_timeout)
        text = str(workflow)
        if isinstance(workflow, Path) or text.endswith((".yaml", ".yml", ".json")) or "/" in text:
            return load_workflow(text, visibility_timeout=self.settings.visibility_timeout)
        name, _, version = text.partition(":")
        return self.store.workflow(name, int(version) if version.isdigit() else None)

    def register(self, wf: Workflow) -> Plan:
        """Store a workflow version and its plan (idempotent; refuses changed content)."""
        cached = self._plans.get(wf.ref)
        if cached is not None and cached.content_hash == wf.content_hash:
            return cached
        from orchestrator.compiler import compile_plan  # noqa: PLC0415

        plan = compile_plan(wf, default_queue=self.settings.default_queue)
        with reachable(self.url):
            self.store.register(wf, plan)
        self._plans[wf.ref] = plan
        return plan

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
        value = input or {}
        payload = encode_input(value, self.settings.max_payload_bytes)
        unchecked = self.checks.run_input(wf, value)
        plan = self.register(wf)
        with reachable(self.url):
            run_id, _ = self.store.submit(plan, payload, key=key)
        warn_unchecked(unchecked)
        return Run(self, run_id)

    def run(self, run_id: str) -> Run:
        self._run_fields(run_id)  # raises NotFoundError for an unknown id
        return Run(self, run_id)

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
        if state is not None and state not in {s.value for s in RunState}:
            allowed = ", ".join(s.value for s in RunState)
            raise OrchestratorError(f"unknown run state {state!r}; one of {allowed}")
        out: list[dict[str, Any]] = []
        with reachable(self.url):
            recent = cast(
                list[bytes], self.redis.zrevrange(self.keys.runs, 0, max(limit * 5, 100) - 1)
            )
        for run_id in (i.decode() for i in recent):
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

    def signal(self, run_id: str, name: str, data: Any = None) -> list[str]:
        """Send signal ``name`` to a run: the steps waiting for it succeed with ``data``.

        Returns the steps it completed. The data is checked against the
        parameters it will feed, where the client can import their steps.
        """
        fields = self.store.run_fields(run_id)
        wf = self.resolve(fields["wf"])
        waiting = [s for s, spec in wf.steps.items() if spec.wait_for == name]
        if not waiting:
            raise NotFoundError(f"run {run_id}: no step of {wf.ref} waits for signal {name!r}")
        payload = encode_value(data, self.settings.max_payload_bytes, where=f"signal {name!r}")
        unchecked = [self.checks.signal(wf, step, data) for step in waiting]
        with reachable(self.url):
            reply = self.store.signal(run_id, name, payload)
        if reply[0] == "ok":
            for note in unchecked:
                warn_unchecked(note)
            return reply[2:]
        if reply[0] == "none":
            now = ", ".join(f"{s} is {st}" for s, st in zip(reply[1::2], reply[2::2], strict=True))
            raise OrchestratorError(f"run {run_id}: no step waits for signal {name!r} now ({now})")
        raise OrchestratorError(f"run {run_id} is {reply[1] if len(reply) > 1 else 'gone'}")

    def cancel(self, run_id: str, reason: str = "") -> str:
        """Cancel a run (idempotent); returns its state after the request."""
        reply = self.store.cancel(run_id, reason)
        if reply[0] == "gone":
            raise NotFoundError(f"run {run_id!r} not found (unknown, or expired)")
        return reply[1]

    def retry(self, run_id: str) -> Run:
        """Resume a FAILED run from its failed steps, as a new run linked to it.

        Completed steps keep their outputs and are not run again; the new run
        uses the same workflow version. Resuming twice gives the same new run.
        """
        status, value = self.store.resume(run_id)
        if status == "gone":
            raise NotFoundError(f"run {run_id!r} not found (unknown, or expired)")
        if status == "state":
            raise OrchestratorError(f"run {run_id} is {value}; only a FAILED run can be resumed")
        return Run(self, value)

    def compensate(self, run_id: str) -> Run:
        """Retry the compensation that failed for good in a run, and carry the saga on.

        The run is reopened (an operator's move, recorded as an event): the
        step whose compensation failed gets a fresh set of attempts, then the
        steps completed before it are undone, and the run ends COMPENSATED (or
        CANCELLED, for a cancelled run) or COMPENSATION_FAILED again.
        """
        status, value = self.store.recompensate(run_id)
        if status == "gone":
            raise NotFoundError(f"run {run_id!r} not found (unknown, or expired)")
        if status == "state":
            raise OrchestratorError(
                f"run {run_id} is {value} with no failed compensation; only a run whose "
                "compensation failed (COMPENSATION_FAILED, or CANCELLED) can compensate again"
            )
        return Run(self, run_id)

    def coverage(self, workflow: Workflow | str | Path) -> dict[str, Any]:
        """Branch coverage of a workflow version: which edges runs have taken."""
        wf = self.resolve(workflow)
        taken = self.store.coverage(wf.ref)
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

    def consumed_queues(self) -> set[str]:
        """Queues some live worker consumes, from the beats workers write every second."""
        keys = self.keys
        with reachable(self.url):
            beats = list(self.redis.scan_iter(match=keys.worker("*"), count=500))
            values = self.redis.mget(beats) if beats else []
        return {q for v in values if v for q in _text(v).split(",") if q}

    def stats(self, workflow: str, version: int) -> dict[str, int]:
        return self.store.stats(f"{workflow}:{version}")


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
            fields = self.client._run_fields(self.id)
            meta = self.client.redis.hget(self.client.keys.plan(fields["wf"]), "__meta__")
        order = json.loads(meta)["order"] if meta else []
        return status_document(self.id, fields, order)

    def state(self) -> str:
        return str(self.status()["state"])

    def cancel(self, reason: str = "") -> str:
        return self.client.cancel(self.id, reason)

    def stuck(self, after: float, doc: dict[str, Any] | None = None) -> str | None:
        """Why the run looks stuck, or None when it has ended or is still moving.

        A run is stuck when it is not terminal, no attempt of it holds a live
        lease, none of its steps waits in the delayed set, and nothing has
        been recorded for ``after`` seconds: its queued messages were lost
        (for example a Redis restart without an fsynced AOF) or no worker
        consumes their queue.
        """
        doc = doc or self.status()
        if doc["state"] in TERMINAL:
            return None
        store = self.client.store
        leases, delayed = store.pending_work(self.id)
        last = store.last_event_time(self.id)
        idle = time.time() - last if last is not None else float("inf")
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
        return f"{waiting_on} (their queue has a live worker: were the messages lost?)"

    def _unconsumed_queues(self, doc: dict[str, Any], steps: list[str]) -> list[str]:
        """The queues of ``steps`` that no live worker consumes (workers beat their queues)."""
        client = self.client
        wf = client.store.workflow(doc["workflow"], int(doc["version"]))
        default = client.settings.default_queue
        wanted = sorted({wf.steps[s].queue or default for s in steps if s in wf.steps})
        return [q for q in wanted if q not in client.consumed_queues()]

    def events(self) -> list[dict[str, Any]]:
        return self.client.store.events(self.id)

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
        for _ in _done_notifications(self.client, self.id, deadline):
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


def _done_notifications(client: Client, run_id: str, deadline: float | None) -> Iterator[None]:
    """Yield once at once, then on each end-of-run notice or every second."""
    pubsub = client.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    try:
        with reachable(client.url):
            pubsub.subscribe(client.keys.done_channel(run_id))
        yield None
        while deadline is None or time.monotonic() < deadline:
            left = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
            with reachable(client.url):
                pubsub.get_message(timeout=left)
            yield None
    finally:
        pubsub.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
