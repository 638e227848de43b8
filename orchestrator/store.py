"""The run store: every state change goes through one atomic Lua script here.

Python decides *what* happened (a step returned, raised, must wait); the
scripts decide, atomically, what that means for the run: which transition is
legal, which joins completed, which messages to queue, whether the run ended.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, cast

import redis

from orchestrator.compiler import Plan
from orchestrator.errors import NotFoundError, SpecError, WorkflowConflictError
from orchestrator.keys import Keys
from orchestrator.messages import queue_list_key, step_template
from orchestrator.spec import Workflow
from orchestrator.states import lua_table

_ENGINE = (
    "submit", "claim", "complete", "fail", "skip", "signal", "timeout",
    "undo_claim", "undo_done", "cancel", "resume", "recompensate",
)  # fmt: skip
_PLAIN = ("promote", "register", "sweep", "heartbeat", "due")


@cache
def script_source(name: str) -> str:
    """The Lua source of one script, with the transition table (and prelude) prepended."""
    folder = resources.files("orchestrator") / "scripts"
    body = (folder / f"{name}.lua").read_text()
    prelude = ""
    if name in _ENGINE:
        parts = ("prelude.lua", "deps.lua", "saga.lua", "claiming.lua")
        prelude = "".join((folder / part).read_text() for part in parts)
    return lua_table() + prelude + body


def new_run_id() -> str:
    return secrets.token_hex(8)


def new_token() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class Attempt:
    """One try of one step (or one map element) of one run, fenced by its token.

    Only the holder of the current token can record an outcome, so an attempt
    that was taken over (its worker presumed lost) cannot overwrite the result.
    """

    run_id: str
    ref: str
    step: str
    index: int | None = None
    token: str = field(default_factory=new_token)
    dependency: str = ""

    def args(self) -> tuple[str, str, str]:
        return self.step, "" if self.index is None else str(self.index), self.token

    def lease_member(self) -> str:
        """How the attempt is named in the lease set (the Lua prelude builds the same)."""
        idx = "" if self.index is None else str(self.index)
        return f"{self.run_id}|{self.step}|{idx}|{self.token}"

    @classmethod
    def from_lease_member(cls, member: str, ref: str = "") -> Attempt:
        run_id, step, idx, token = member.split("|")
        return cls(run_id, ref, step, int(idx) if idx else None, token)


@dataclass(frozen=True)
class Claim:
    """What a worker gets when it may run a step."""

    attempt: int
    input_json: str
    mode: str
    upstream_json: dict[str, str | None]


@dataclass(frozen=True)
class Handoff:
    """The attempt a recording script claimed for the runner to run next."""

    step: str
    index: int | None
    token: str
    claim: Claim


@dataclass
class Runner:
    """A worker that runs more of a run's steps from one Celery message (see claiming.lua).

    Passed to ``complete`` and ``fail``, which leave the attempt they claimed
    for it in ``handoff``. Past ``deadline`` (monotonic) it yields: its next
    entry goes back to the broker as a message, so one run cannot hold a
    worker process for long.
    """

    queue: str
    worker: str
    deadline: float
    handoff: Handoff | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RunStore:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        run_ttl: int,
        max_payload: int,
        lease_seconds: float = 30.0,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.run_ttl = run_ttl
        self.max_payload = max_payload
        self.lease_seconds = lease_seconds
        self._scripts = {
            name: client.register_script(script_source(name)) for name in _ENGINE + _PLAIN
        }
        self._records: dict[str, dict[str, bytes]] = {}

    # -- registration -------------------------------------------------------

    def register(self, wf: Workflow, plan: Plan) -> None:
        """Store the workflow version and its plan; refuse different content."""
        fields: list[str] = ["__meta__", json.dumps(_meta(plan))]
        for name, sp in plan.steps.items():
            fields += [name, json.dumps(_step_record(plan, name, sp.queue), separators=(",", ":"))]
        queues = sorted({sp.queue for sp in plan.steps.values()})
        outcome = self._scripts["register"](
            keys=[self.keys.workflow(wf.name), self.keys.plan(plan.ref), self.keys.queues],
            args=[str(wf.version), wf.canonical_json(), json.dumps(queues), *fields],
        )
        if _text(outcome) == "conflict":
            raise WorkflowConflictError(
                f"version {wf.version} is already registered with different content; "
                "bump the version",
                where=f"workflow {wf.name!r}",
            )

    def workflow(self, name: str, version: int | None = None) -> Workflow:
        """A registered workflow version (the newest when ``version`` is None)."""
        versions = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.workflow(name)))
        if not versions:
            raise NotFoundError(f"workflow {name!r} has never been submitted")
        chosen = str(version) if version is not None else str(max(int(v) for v in versions))
        raw = versions.get(chosen.encode())
        if raw is None:
            raise NotFoundError(f"workflow {name!r} has no version {chosen}")
        return Workflow.from_json(raw)

    def queues(self) -> set[str]:
        return {_text(q) for q in cast(set[bytes], self.redis.smembers(self.keys.queues))}

    # -- run lifecycle ------------------------------------------------------

    def records(self, ref: str) -> dict[str, bytes]:
        """The plan's per-step records as stored (JSON); a plan never changes, so cached."""
        found = self._records.get(ref)
        if found is None:
            raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.plan(ref)))
            found = {k.decode(): v for k, v in raw.items() if k != b"__meta__"}
            if not found:
                raise NotFoundError(f"workflow {ref} has no registered plan")
            self._records[ref] = found
        return found

    def _infos(self, ref: str, step: str, *, downstream: bool) -> bytes:
        """The records a script needs, so it need not read the plan hash itself."""
        records = self.records(ref)
        names = [step, *json.loads(records[step])["d"]] if downstream else [step]
        return b"{" + b",".join(b'"%s":%s' % (n.encode(), records[n]) for n in names) + b"}"

    def _engine(self, name: str, run_id: str, infos: bytes, *args: Any) -> list[Any]:
        reply = self._scripts[name](
            keys=[self.keys.run(run_id), self.keys.events(run_id)],
            args=[self.keys.prefix, run_id, self.run_ttl, infos, *args],
        )
        return cast(list[Any], reply)

    def submit(self, plan: Plan, run_input: str, *, key: str | None = None) -> tuple[str, bool]:
        """Create a run (or find the one created under ``key``); returns (id, created)."""
        key_name = self.keys.idempotency(plan.workflow, key) if key is not None else ""
        reply = self._engine("submit", new_run_id(), b"", plan.ref, run_input, key_name)
        status, run_id = _text(reply[0]), _text(reply[1])
        if status == "noplan":
            raise SpecError(f"workflow {run_id} is not registered")
        return run_id, status == "created"

    def claim(self, attempt: Attempt, worker: str, *, gate_open: bool = False) -> Claim | str:
        """Start an attempt; returns a ``Claim``, or the reason the step must not run.

        A ``Claim`` with mode ``gate`` starts nothing: it carries the inputs of
        the step's ``when`` predicate; claim again with ``gate_open`` if it holds.
        """
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        args = (*attempt.args(), worker, self.lease_seconds, "open" if gate_open else "")
        return _claim_from(self._engine("claim", attempt.run_id, infos, *args))

    def complete(
        self,
        attempt: Attempt,
        output: str,
        items: list[str],
        *,
        how: str = "",
        runner: Runner | None = None,
    ) -> str:
        """Record an output; the script queues whatever it made ready.

        ``how`` is ``call`` when the step's dependency was called and answered
        (a success for its breaker), ``fallback`` when the fallback produced the
        output without a call, ``fallback-after-call`` when the call failed and
        the fallback answered (a failure for the breaker, the output marked).
        """
        infos = self._infos(attempt.ref, attempt.step, downstream=True)
        extra = self._runner_args(runner)
        args = (*attempt.args(), output, self.max_payload, how, *extra, *items)
        reply = self._engine("complete", attempt.run_id, infos, *args)
        return _recorded(reply, runner, extra[1])

    def fail(
        self,
        attempt: Attempt,
        error: dict[str, Any],
        *,
        retry_in: float | None,
        edge: str = "",
        called: bool = False,
        runner: Runner | None = None,
    ) -> str:
        """Record a failed attempt: retried after ``retry_in`` seconds, or final when None.

        Returns ``fallback:...`` when the retry budget refused the retry and the
        step has a fallback, which the caller then runs in this same attempt.
        """
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        delay = "" if retry_in is None else f"{retry_in:.6f}"
        extra = self._runner_args(runner)
        args = (*attempt.args(), json.dumps(error), delay, edge, "1" if called else "", *extra)
        reply = self._engine("fail", attempt.run_id, infos, *args)
        return _recorded(reply, runner, extra[1])

    def _runner_args(self, runner: Runner | None) -> tuple[str, str, str, str, str]:
        if runner is None:
            return ("", "", "", "", "")
        runner.handoff = None
        yielding = "yield" if time.monotonic() >= runner.deadline else ""
        return (runner.queue, new_token(), runner.worker, str(self.lease_seconds), yielding)

    def signal(self, run_id: str, name: str, data: str) -> list[str]:
        """Complete the steps of ``run_id`` waiting for signal ``name``; see signal.lua."""
        return [_text(x) for x in self._engine("signal", run_id, b"", name, data)]

    def expire_waits(self, batch: int = 100) -> int:
        """Time out waiting steps whose ``timeout`` passed with no signal."""
        due = self._scripts["due"](keys=[self.keys.timeouts], args=[batch])
        for member in due:
            run_id, step = _text(member).split("|")
            self._engine("timeout", run_id, b"", step)
        return len(due)

    def undo_claim(self, attempt: Attempt, worker: str) -> Claim | str:
        """Start a compensation attempt (``attempt.index`` is -1)."""
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        args = (attempt.step, attempt.token, worker, self.lease_seconds)
        reply = self._engine("undo_claim", attempt.run_id, infos, *args)
        return _claim_from(reply)

    def undo_done(
        self,
        attempt: Attempt,
        error: dict[str, Any] | None = None,
        *,
        retry_in: float | None = None,
    ) -> str:
        """Record a compensation's outcome: done, retried after ``retry_in``, or failed."""
        infos = self._infos(attempt.ref, attempt.step, downstream=False)
        err = "" if error is None else json.dumps(error)
        delay = "" if retry_in is None else f"{retry_in:.6f}"
        args = (attempt.step, attempt.token, err, delay)
        return ":".join(_text(x) for x in self._engine("undo_done", attempt.run_id, infos, *args))

    def cancel(self, run_id: str, reason: str = "") -> list[str]:
        return [_text(x) for x in self._engine("cancel", run_id, b"", reason)]

    def resume(self, run_id: str) -> tuple[str, str]:
        """Resume a FAILED run as a new one; returns (status, run id or state)."""
        reply = self._engine("resume", new_run_id(), b"", run_id)
        return _text(reply[0]), _text(reply[1]) if len(reply) > 1 else ""

    def recompensate(self, run_id: str) -> tuple[str, str]:
        """Reopen a run whose compensation failed for good; returns (status, step or state)."""
        reply = self._engine("recompensate", run_id, b"")
        return _text(reply[0]), _text(reply[1]) if len(reply) > 1 else ""

    def skip(self, attempt: Attempt) -> str:
        """Skip a gated step whose ``when`` predicate was false."""
        infos = self._infos(attempt.ref, attempt.step, downstream=True)
        return ":".join(_text(x) for x in self._engine("skip", attempt.run_id, infos, attempt.step))

    def coverage(self, ref: str) -> set[tuple[str, str]]:
        """Edges ``(upstream, step)`` some run of this version has taken."""
        members = cast(set[bytes], self.redis.smembers(f"{self.keys.stats(ref)}:edges"))
        return {cast(tuple[str, str], tuple(_text(m).split(">", 1))) for m in members}

    def heartbeat(self, attempt: Attempt) -> bool:
        """Extend the attempt's lease; False once it was swept (presumed lost)."""
        member = attempt.lease_member()
        args: list[str | float] = [
            self.keys.prefix,
            self.lease_seconds,
            member,
            attempt.dependency,
            attempt.token,
        ]
        return bool(self._scripts["heartbeat"](keys=[self.keys.leases], args=args))

    def expired_leases(self, batch: int = 100) -> list[Attempt]:
        """Attempts whose lease ran out, each handed to one caller per lease period."""
        args: list[str | float] = [self.keys.prefix, self.lease_seconds, batch]
        members = self._scripts["sweep"](keys=[self.keys.leases], args=args)
        return [Attempt.from_lease_member(_text(m)) for m in members]

    def attempts_of(self, attempt: Attempt) -> int:
        """How many times this step (map element, compensation) has been started."""
        if attempt.index == -1:
            raw = self.redis.hget(self.keys.run(attempt.run_id), f"{attempt.step}.catt")
        elif attempt.index is None:
            raw = self.redis.hget(self.keys.run(attempt.run_id), f"{attempt.step}.att")
        else:
            parts = f"{self.keys.run(attempt.run_id)}:parts:{attempt.step}"
            raw = self.redis.hget(parts, f"a{attempt.index}")
        return int(raw or 0)

    def is_cancelling(self, run_id: str) -> bool:
        state = self.redis.hget(self.keys.run(run_id), "state")
        return state in (b"CANCELLING", b"CANCELLED")

    def run_ref(self, run_id: str) -> str | None:
        raw = self.redis.hget(self.keys.run(run_id), "wf")
        return _text(raw) if raw is not None else None

    def promote_due(self, batch: int = 200) -> int:
        """Queue retries whose backoff has elapsed; returns how many moved."""
        return int(
            self._scripts["promote"](keys=[self.keys.delayed], args=[self.keys.prefix, batch])
        )

    # -- reading ------------------------------------------------------------

    def run_fields(self, run_id: str) -> dict[str, str]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.run(run_id)))
        if not raw:
            raise NotFoundError(
                f"run {run_id!r} not found (unknown, or expired after ORCH_RUN_TTL)"
            )
        return {k.decode(): v.decode() for k, v in raw.items()}

    def events(self, run_id: str) -> list[dict[str, Any]]:
        raw = cast(list[bytes], self.redis.lrange(self.keys.events(run_id), 0, -1))
        return [json.loads(e) for e in raw]

    def plan_steps(self, ref: str) -> dict[str, dict[str, Any]]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.plan(ref)))
        return {k.decode(): json.loads(v) for k, v in raw.items() if k != b"__meta__"}

    def last_event_time(self, run_id: str) -> float | None:
        raw = cast(bytes | None, self.redis.lindex(self.keys.events(run_id), -1))
        return float(json.loads(raw)["t"]) if raw else None

    def pending_work(self, run_id: str) -> tuple[int, int]:
        """(live leases, delayed messages) of a run: signs that it is still moving."""
        now = float(self.redis.time()[0])
        leases = sum(
            1
            for _, expiry in self.redis.zscan_iter(self.keys.leases, match=f"{run_id}|*")
            if expiry > now
        )
        delayed = sum(1 for _ in self.redis.zscan_iter(self.keys.delayed, match=f"*{run_id}*"))
        return leases, delayed

    def recent_runs(self, limit: int) -> list[str]:
        ids = cast(list[bytes], self.redis.zrevrange(self.keys.runs, 0, limit - 1))
        return [i.decode() for i in ids]

    def stats(self, ref: str) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.stats(ref)))
        return {k.decode(): int(v) for k, v in raw.items()}

    def beat_capacity(self, hostname: str, queues: list[str], concurrency: int) -> None:
        """Say, for 10 s, how many processes this worker runs each queue with (claiming.lua)."""
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                key = self.keys.capacity(queue_list_key(queue))
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {f"{hostname}|{concurrency}": now + 10})
                pipe.expire(key, 60)
            pipe.execute()

    def illegal_transitions(self) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.illegal))
        return {k.decode(): int(v) for k, v in raw.items()}


def _meta(plan: Plan) -> dict[str, Any]:
    return {
        "order": list(plan.order),
        "roots": list(plan.roots),
        "finals": list(plan.finals),
        "hash": plan.content_hash,
        "mapped_over": sorted(n for n, sp in plan.steps.items() if sp.mapped_over),
        "maps": sorted(n for n, sp in plan.steps.items() if sp.map_source is not None),
        "edges": [[up, name] for name in plan.order for up in plan.steps[name].upstreams],
        "waits": _waits(plan),
        "compensable": [n for n in plan.order if plan.steps[n].compensate is not None],
        "lists": sorted({queue_list_key(sp.queue) for sp in plan.steps.values()}),
    }


def _recorded(reply: list[Any], runner: Runner | None, token: str) -> str:
    """The outcome of complete or fail; a claimed next attempt goes to the runner."""
    if runner is not None and len(reply) > 2 and _text(reply[2]) == "next":
        claim = _claim_from(reply[5:])
        assert isinstance(claim, Claim)  # the script hands over only attempts it claimed
        index = _text(reply[4])
        runner.handoff = Handoff(_text(reply[3]), int(index) if index else None, token, claim)
    return ":".join(_text(x) for x in reply[:2])


def _claim_from(reply: list[Any]) -> Claim | str:
    if _text(reply[0]) != "run":
        return ":".join(_text(x) for x in reply)
    pairs = reply[4:]
    upstream = {
        _text(pairs[k]): (_text(pairs[k + 1]) if pairs[k + 1] is not None else None)
        for k in range(0, len(pairs), 2)
    }
    return Claim(int(reply[1]), _text(reply[2]), _text(reply[3]), upstream)


def _waits(plan: Plan) -> dict[str, list[str]]:
    """Signal name -> the steps that wait for it."""
    waits: dict[str, list[str]] = {}
    for name in plan.order:
        signal = plan.steps[name].wait_for
        if signal is not None:
            waits.setdefault(signal, []).append(name)
    return waits


def _step_record(plan: Plan, name: str, queue: str) -> dict[str, Any]:
    sp = plan.steps[name]
    record: dict[str, Any] = {
        "up": list(sp.upstreams),
        "d": list(sp.downstreams),
        "q": queue_list_key(queue),
        "t": step_template(plan, sp),
        "mo": sp.mapped_over,
    }
    if sp.map_source is not None:
        record["m"] = sp.map_source
    if sp.wait_for is not None:
        record["w"] = sp.wait_for
        if sp.wait_timeout is not None:
            record["to"] = sp.wait_timeout
        record["ot"] = sp.on_timeout
    if sp.dependency is not None:
        record["dep"] = sp.dependency
    if sp.fallback is not None:
        record["fb"] = True
    if sp.when is not None:
        record["wh"] = True
    if sp.compensate is not None:
        record["cp"] = True
        record["tc"] = step_template(plan, sp, compensation=True)
    if sp.trigger != "all_succeeded":
        record["tr"] = sp.trigger
    if sp.timeout is not None:
        record["tl"] = True
    return record
