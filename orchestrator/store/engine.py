"""Engine writes: every change of run state goes through one atomic script here.

Python decides *what* happened (a step returned, raised, must wait); the
scripts decide, atomically, what that means for the run: which transition is
legal, which joins completed, which messages to queue, whether the run ended.
Each method sends a typed argument set (``inputs``) and returns a typed
outcome (``outcomes``), parsed in ``replies``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Required, TypedDict, Unpack, cast

import redis

from orchestrator.compiler import Plan
from orchestrator.epoch import EpochWatch, new_run_id
from orchestrator.errors import NotFoundError
from orchestrator.keys import Keys
from orchestrator.spec import Workflow
from orchestrator.store import inputs as i
from orchestrator.store import outcomes as o
from orchestrator.store import replies
from orchestrator.store.records import plan_fields
from orchestrator.store.scripts import Scripts
from orchestrator.store.wire import split_plan

#: Names this process tree (a worker's main process and the pool children it
#: forks, which inherit the value): with a pid it names the process that made
#: a token, so a worker's main process can find the leases of a child that
#: died (``token_owner``), whatever pids other hosts or containers reuse.
_TREE = secrets.token_hex(3)


def token_owner(pid: int | None = None) -> str:
    """The tag that ends every token made by process ``pid`` (default: this one)."""
    return f"{_TREE}{pid or os.getpid():x}"


def new_token() -> str:
    """A fresh attempt token: 12 random hex digits, then ``.`` and its maker's tag."""
    return f"{secrets.token_hex(6)}.{token_owner()}"


class SubmitOptions(TypedDict, total=False):
    """What a submit says beyond its plan and input (``Engine.submit``, ``submit_args``).

    ``key`` must be given (None for none); the rest default to no context, priority 0,
    no fairness key (weight 1), no concurrency key and no deadline.
    """

    key: Required[str | None]
    context: str
    priority: int
    fairness_key: str | None
    fairness_weight: float
    concurrency_key: str | None
    deadline: float | None


@dataclass(frozen=True)
class Attempt:
    """One try of one step (or one map element) of one run, fenced by its token.

    Only the holder of the current token can record an outcome, so an attempt
    that was taken over (its worker presumed lost) cannot overwrite the result.
    A compensation attempt has ``index`` -1.
    """

    run_id: str
    ref: str
    step: str
    index: int | None = None
    token: str = field(default_factory=new_token)
    dependency: str = ""

    @property
    def index_arg(self) -> str:
        return "" if self.index is None else str(self.index)

    def lease_member(self) -> str:
        """How the attempt is named in the lease set (run.lua's lease_member builds the same)."""
        return f"{self.run_id}|{self.step}|{self.index_arg}|{self.token}"

    @classmethod
    def from_lease_member(cls, member: str, ref: str = "") -> Attempt:
        run_id, step, idx, token = member.split("|")
        return cls(run_id, ref, step, int(idx) if idx else None, token)


@dataclass(frozen=True)
class Lane:
    """A worker that runs more of a run's steps from one Celery message (claiming.lua).

    Passed to ``complete`` and ``fail``, whose outcome then carries the
    attempt the script claimed for it (``Recorded.handoff``). Past
    ``deadline`` (monotonic) it yields: its next entry goes back to the broker
    as a message, so one run cannot hold a worker process for long.
    """

    queue: str
    worker: str
    deadline: float


class Engine:
    """The scripts that change runs, on one Redis client."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        run_ttl: int,
        max_payload: int,
        lease_seconds: float = 10.0,
        observe: i.Observe = i.Observe.NOTHING,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.max_payload = max_payload
        self.lease_seconds = lease_seconds
        #: Which decisions the scripts answer with (hooks are listening, or a test).
        self.observe = observe
        #: Whether replies carry the attempt's times and context (replies.inputs).
        self.observed = observe is not i.Observe.NOTHING
        self.scripts = Scripts(client, keys.prefix, run_ttl)
        self._records: dict[str, dict[str, bytes]] = {}
        self._infos_made: dict[tuple[str, str, bool], bytes] = {}
        #: The data's epoch, which new run ids start with (orchestrator.epoch).
        self.epochs = EpochWatch(client, keys, who=f"pid {os.getpid()}")

    def new_run_id(self) -> str:
        return new_run_id(self.epochs.epoch().id)

    # -- registration -------------------------------------------------------

    def register(self, wf: Workflow, plan: Plan) -> o.Registered | o.Conflict:
        """Store the workflow version and its plan; a changed version is a Conflict."""
        queues = sorted({sp.queue for sp in plan.steps.values()})
        args = i.RegisterArgs(
            name=wf.name,
            ref=plan.ref,
            version=str(wf.version),
            canonical=wf.canonical_json(),
            queues=json.dumps(queues),
            records=tuple(plan_fields(plan)),
        )
        return replies.register(self.scripts.plain(args))

    def records(self, ref: str) -> dict[str, bytes]:
        """The plan's per-step records as stored (JSON); a plan never changes, so cached."""
        found = self._records.get(ref)
        if found is None:
            raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.plan(ref)))
            found, _ = split_plan({k.decode(): v for k, v in raw.items()})
            if not found:
                raise NotFoundError(f"workflow {ref} has no registered plan")
            self._records[ref] = found
        return found

    def _infos(self, ref: str, step: str, *, downstream: bool) -> bytes:
        """The records a script needs, so it need not read the plan hash itself.

        Built once per step: a plan never changes, and every attempt sends them.
        """
        found = self._infos_made.get((ref, step, downstream))
        if found is not None:
            return found
        records = self.records(ref)
        if step not in records:
            raise NotFoundError(f"workflow {ref} has no step {step!r}")
        names = [step, *json.loads(records[step])["downstreams"]] if downstream else [step]
        found = b"{" + b",".join(b'"%s":%s' % (n.encode(), records[n]) for n in names) + b"}"
        self._infos_made[(ref, step, downstream)] = found
        return found

    def _call(self, args: i.ScriptArgs, run_id: str, infos: bytes = b"") -> Any:
        return self.scripts.engine(args, run_id, infos, self.observe.value)

    def queue(self, pipe: redis.client.Pipeline, args: i.ScriptArgs, run_id: str) -> None:
        """Queue a call made by ``*_args`` (``submit_args``) on ``pipe``."""
        self.scripts.engine(args, run_id, b"", self.observe.value, pipe=pipe)

    # -- runs -----------------------------------------------------------------

    def submit(
        self, plan: Plan, run_input: str, **options: Unpack[SubmitOptions]
    ) -> o.Submitted | o.NoPlan | o.Refused:
        """Create a run (or find the one created under ``key``), carrying ``context`` (JSON).

        Admission control may refuse it (``Refused``); never a resubmit under ``key``.
        With a ``deadline`` (seconds) it is cancelled if it has not ended by then.
        """
        args, run_id = self.submit_args(plan, run_input, **options)
        return replies.submit(self._call(args, run_id))

    def submit_args(
        self, plan: Plan, run_input: str, **options: Unpack[SubmitOptions]
    ) -> tuple[i.SubmitArgs, str]:
        """``submit``'s script arguments and new run id, for a caller that pipelines calls
        (``scripts.engine(..., pipe=)``; ``replies.submit`` reads each reply)."""
        key = options["key"]
        args = i.SubmitArgs(
            ref=plan.ref,
            input=run_input,
            key=self.keys.idempotency(plan.workflow, key) if key is not None else "",
            context=options.get("context", ""),
            priority=options.get("priority", 0),
            fairness_key=options.get("fairness_key") or "",
            fairness_weight=options.get("fairness_weight", 1.0),
            concurrency_key=options.get("concurrency_key") or "",
            deadline=options.get("deadline"),
        )
        return args, self.new_run_id()

    def signal(self, run_id: str, name: str, data: str) -> o.SignalOutcome:
        """Complete the steps of ``run_id`` waiting for signal ``name``."""
        return replies.signal(self._call(i.SignalArgs(name=name, data=data), run_id))

    def timeout(self, run_id: str, step: str) -> o.Settled:
        return replies.settled(self._call(i.TimeoutArgs(step=step), run_id))

    def cancel(self, run_id: str, reason: str = "") -> o.CancelRequested | o.Final | o.Gone:
        return replies.cancel(self._call(i.CancelArgs(reason=reason), run_id))

    def deadline(self, run_id: str) -> o.CancelRequested | o.Final | o.Gone:
        """Cancel a run whose deadline passed, with the deadline as the reason."""
        return replies.cancel(self._call(i.DeadlineArgs(), run_id))

    def resume(self, run_id: str) -> o.Resumed | o.WrongState | o.Gone:
        """Resume a FAILED run as a new one."""
        return replies.resume(self._call(i.ResumeArgs(old_run=run_id), self.new_run_id()))

    def recompensate(self, run_id: str) -> o.Reopened | o.WrongState | o.Gone:
        """Reopen a run whose compensation failed for good."""
        return replies.recompensate(self._call(i.RecompensateArgs(), run_id))

    # -- attempts -------------------------------------------------------------

    def claim(self, attempt: Attempt, worker: str, *, gate_open: bool = False) -> o.Claim:
        """Start an attempt, or learn why it must not run.

        A ``Run`` whose mode is GATE starts nothing: it carries the inputs of
        the step's ``when`` predicate; claim again with ``gate_open`` if it holds.
        """
        args = i.ClaimArgs(
            step=attempt.step,
            index=attempt.index_arg,
            token=attempt.token,
            worker=worker,
            lease=self.lease_seconds,
            gate_open=gate_open,
        )
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        return replies.claim(self._call(args, attempt.run_id, infos), self.observed)

    def complete(
        self,
        attempt: Attempt,
        output: str,
        items: list[str],
        *,
        how: str = "",
        lane: Lane | None = None,
    ) -> o.Recording:
        """Record an output; the script dispatches whatever it made ready.

        ``how`` is ``call`` when the step's dependency was called and answered
        (a success for its breaker), ``fallback`` when the fallback produced the
        output without a call, ``fallback-after-call`` when the call failed and
        the fallback answered (a failure for the breaker, the output marked).
        """
        lane_args = self._lane_args(lane)
        args = i.CompleteArgs(
            step=attempt.step,
            index=attempt.index_arg,
            token=attempt.token,
            output=output,
            cap=self.max_payload,
            how=how,
            items=tuple(items),
            **lane_args,
        )
        infos = self._infos(attempt.ref, attempt.step, downstream=True)
        raw = self._call(args, attempt.run_id, infos)
        return replies.recording(raw, str(lane_args.get("lane_token", "")), self.observed)

    def fail(
        self,
        attempt: Attempt,
        error: dict[str, Any],
        *,
        retry_in: float | None,
        edge: str = "",
        called: bool = False,
        lane: Lane | None = None,
    ) -> o.Recording:
        """Record a failed attempt: retried after ``retry_in`` seconds, or final when None.

        Answers ``UseFallback`` when the retry budget refused the retry and the
        step has a fallback, which the caller then runs in this same attempt.
        """
        lane_args = self._lane_args(lane)
        args = i.FailArgs(
            step=attempt.step,
            index=attempt.index_arg,
            token=attempt.token,
            error=json.dumps(error),
            delay=retry_in,
            edge=edge,
            called=called,
            **lane_args,
        )
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        raw = self._call(args, attempt.run_id, infos)
        outcome = replies.recording(raw, str(lane_args.get("lane_token", "")), self.observed)
        if isinstance(outcome, o.Recorded) and outcome.retry_in is None:
            return dataclasses.replace(outcome, failed=True)
        return outcome

    def _lane_args(self, lane: Lane | None) -> dict[str, Any]:
        if lane is None:
            return {}
        return {
            "lane_queue": lane.queue,
            "lane_token": new_token(),
            "lane_worker": lane.worker,
            "lane_lease": self.lease_seconds,
            "lane_yield": time.monotonic() >= lane.deadline,
        }

    def spawn(self, attempt: Attempt, child_input: str, *, context: str = "") -> o.SpawnOutcome:
        """Start the child run of a claimed child workflow step; the step then waits for it."""
        args = i.SpawnArgs(
            step=attempt.step,
            index=attempt.index_arg,
            token=attempt.token,
            input=child_input,
            context=context,
        )
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        return replies.spawn(self._call(args, attempt.run_id, infos))

    def undo_child(self, attempt: Attempt) -> o.ChildUndoOutcome:
        """Undo the children of a child workflow step as a whole (a claimed compensation)."""
        args = i.UndoChildArgs(step=attempt.step, token=attempt.token)
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        return replies.undo_child(self._call(args, attempt.run_id, infos))

    def skip(self, attempt: Attempt) -> o.Settled:
        """Skip a gated step whose ``when`` predicate was false."""
        infos = self._infos(attempt.ref, attempt.step, downstream=True)
        return replies.settled(self._call(i.SkipArgs(step=attempt.step), attempt.run_id, infos))

    def undo_claim(self, attempt: Attempt, worker: str) -> o.Claim:
        """Start a compensation attempt (``attempt.index`` is -1)."""
        args = i.UndoClaimArgs(
            step=attempt.step, token=attempt.token, worker=worker, lease=self.lease_seconds
        )
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        return replies.undo_claim(self._call(args, attempt.run_id, infos), self.observed)

    def undo_done(
        self,
        attempt: Attempt,
        error: dict[str, Any] | None = None,
        *,
        retry_in: float | None = None,
    ) -> o.UndoRecording:
        """Record a compensation's outcome: done, retried after ``retry_in``, or failed."""
        args = i.UndoDoneArgs(
            step=attempt.step,
            token=attempt.token,
            error="" if error is None else json.dumps(error),
            delay=retry_in,
        )
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        return replies.undo_done(self._call(args, attempt.run_id, infos))
