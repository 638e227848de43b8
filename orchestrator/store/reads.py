"""Reading runs: status documents, events, listings and the counters scripts keep.

Reads never change state, so they are plain commands rather than scripts;
they go through here so that no other module knows how a run is laid out in
Redis (keys.py, fields.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from orchestrator.clock import redis_now
from orchestrator.epoch import missing_run
from orchestrator.errors import NotFoundError
from orchestrator.fields import PART_FIELDS, RUN_FIELDS, step_field, stored
from orchestrator.keys import Keys
from orchestrator.states import RunState
from orchestrator.status import status_document
from orchestrator.store.scores import KEEP_HOURS, ScoreReader
from orchestrator.store.wire import MESSAGE, META, UNDO_MESSAGE, context, split_plan, text

if TYPE_CHECKING:
    from orchestrator.leanredis import Conn
    from orchestrator.scorecard.figures import Shape
    from orchestrator.spec import Workflow
    from orchestrator.store.engine import Attempt

_STATE = stored(RUN_FIELDS, "state")
_WORKFLOW = stored(RUN_FIELDS, "workflow")
_CONTEXT = stored(RUN_FIELDS, "context")
_ELEMENT_ATTEMPTS = stored(PART_FIELDS, "attempts")
#: Parsed workflow versions a reader keeps (then it starts again).
PARSED_KEPT = 256


class RunReader:
    def __init__(self, client: Conn, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self.scores = ScoreReader(client, keys)
        #: Versions parsed, by their stored JSON: a version never changes, and a submit by
        #: name reads it each time; the same object back also spares the client's checks.
        self._parsed: dict[bytes, Workflow] = {}

    # -- workflows ------------------------------------------------------------

    def workflow(self, name: str, version: int | None = None) -> Workflow:
        """A registered workflow version (the newest when ``version`` is None)."""
        versions = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.workflow(name)))
        if not versions:
            raise NotFoundError(f"workflow {name!r} has never been submitted")
        chosen = str(version) if version is not None else str(max(int(v) for v in versions))
        raw = versions.get(chosen.encode())
        if raw is None:
            raise NotFoundError(f"workflow {name!r} has no version {chosen}")
        found = self._parsed.get(raw)
        if found is None:
            from orchestrator.spec import Workflow  # noqa: PLC0415 - the models only when asked

            if len(self._parsed) >= PARSED_KEPT:
                self._parsed.clear()
            found = self._parsed[raw] = Workflow.from_json(raw)
        return found

    def workflow_names(self) -> list[str]:
        """Every workflow ever registered, sorted (the console's and the API's listing).

        register.lua notes each name in K.workflows. Names registered before that
        set existed are found by one scan, the first time anyone asks; the empty
        member then records that the set is whole, so no later call scans.
        """
        names = {text(n) for n in cast(set[bytes], self.redis.smembers(self.keys.workflows))}
        if "" not in names:
            prefix = self.keys.workflow("")
            found = {
                text(k)[len(prefix) :] for k in self.redis.scan_iter(match=f"{prefix}*", count=500)
            }
            self.redis.sadd(self.keys.workflows, *found, "")
            names |= found
        return sorted(names - {""})

    def queues(self) -> set[str]:
        return {text(q) for q in cast(set[bytes], self.redis.smembers(self.keys.queues))}

    def plan_steps(self, ref: str) -> dict[str, dict[str, Any]]:
        """Each step's plan record, with its message templates under their field names."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.plan(ref)))
        records, templates = split_plan({k.decode(): v for k, v in raw.items()})
        steps: dict[str, dict[str, Any]] = {}
        for step, record in records.items():
            found = templates.get(step, {})
            steps[step] = json.loads(record)
            for name, suffix in (("message", MESSAGE), ("undo_message", UNDO_MESSAGE)):
                if suffix in found:
                    steps[step][name] = found[suffix]
        return steps

    def plan_order(self, ref: str) -> list[str]:
        meta = self.redis.hget(self.keys.plan(ref), META)
        return list(json.loads(meta)["order"]) if meta else []

    # -- runs -----------------------------------------------------------------

    def run_fields(self, run_id: str) -> dict[str, str]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.run(run_id)))
        if not raw:
            raise self.missing(run_id)
        return {k.decode(): v.decode() for k, v in raw.items()}

    def require(self, run_id: str) -> None:
        """Raise ``missing`` for a run that is not here (without reading its hash)."""
        if not self.redis.exists(self.keys.run(run_id)):
            raise self.missing(run_id)

    def missing(self, run_id: str) -> NotFoundError:
        """Why ``run_id`` is not here: lost with the Redis data (its epoch is gone), or
        unknown or expired."""
        return missing_run(self.redis, self.keys, run_id)

    def status(self, run_id: str) -> dict[str, Any]:
        """The status document (``orch status --json``)."""
        fields = self.run_fields(run_id)
        return status_document(run_id, fields, self.plan_order(fields[_WORKFLOW]))

    def context(self, run_id: str) -> dict[str, str]:
        """What the producer's hooks carried with the run ({} when nothing)."""
        return context(self.redis.hget(self.keys.run(run_id), _CONTEXT))

    def step_error(self, run_id: str, step: str) -> str | None:
        """A step's recorded error as ``Type: message`` (None when it has none)."""
        raw = self.redis.hget(self.keys.run(run_id), step_field(step, "error"))
        if not raw:
            return None
        found = json.loads(raw)
        return f"{found.get('type')}: {found.get('message')}"

    def child_outcome(self, run_id: str) -> dict[str, str | None]:
        """A child run's state, result and error (all None once it has expired)."""
        names = ("state", "result", "error")
        raw = self.redis.hmget(self.keys.run(run_id), [stored(RUN_FIELDS, n) for n in names])
        return {n: text(v) if v is not None else None for n, v in zip(names, raw, strict=True)}

    def run_ref(self, run_id: str) -> str | None:
        raw = self.redis.hget(self.keys.run(run_id), _WORKFLOW)
        return text(raw) if raw is not None else None

    def is_cancelling(self, run_id: str) -> bool:
        state = self.redis.hget(self.keys.run(run_id), _STATE)
        return state in (RunState.CANCELLING.encode(), RunState.CANCELLED.encode())

    def attempts_of(self, attempt: Attempt) -> int:
        """How many times this step (map element, compensation) has been started."""
        if attempt.index is None or attempt.index == -1:
            name = "attempts" if attempt.index is None else "undo_attempts"
            raw = self.redis.hget(self.keys.run(attempt.run_id), step_field(attempt.step, name))
        else:
            parts = self.keys.parts(attempt.run_id, attempt.step)
            raw = self.redis.hget(parts, f"{_ELEMENT_ATTEMPTS}{attempt.index}")
        return int(raw or 0)

    def events(self, run_id: str) -> list[dict[str, Any]]:
        raw = cast(list[bytes], self.redis.lrange(self.keys.events(run_id), 0, -1))
        return [json.loads(e) for e in raw]

    def events_json(self, run_id: str) -> bytes:
        """The history as one JSON array, as stored: served over HTTP without re-encoding."""
        raw = cast(list[bytes], self.redis.lrange(self.keys.events(run_id), 0, -1))
        return b"[" + b",".join(raw) + b"]"

    def last_event_time(self, run_id: str) -> float | None:
        raw = cast(bytes | None, self.redis.lindex(self.keys.events(run_id), -1))
        return float(json.loads(raw)["t"]) if raw else None

    def now(self) -> float:
        """Redis's clock: every stored time comes from it, so comparisons use it too."""
        return redis_now(self.redis)

    def pending_work(self, run_id: str) -> tuple[int, int]:
        """(live leases, delayed messages) of a run: signs that it is still moving."""
        now = self.now()
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

    def consumed_queues(self) -> set[str]:
        """The registered queues that some live worker consumes.

        Each worker's beat keeps it in K.capacity of its queues until the beat
        runs out (Redis time), so this is one count per queue, never a scan.
        """
        queues = sorted(self.queues())
        now = redis_now(self.redis)
        pipe = self.redis.pipeline(transaction=False)
        for q in queues:
            pipe.zcount(self.keys.capacity(q), f"({now}", "+inf")
        return {q for q, live in zip(queues, pipe.execute(), strict=True) if live}

    def end_notices(self, run_id: str, deadline: float | None) -> Iterator[None]:
        """Yield once at once, then on each end-of-run notice or every second.

        ``LeanRedis`` has no pub/sub (the quick commands never wait): with it,
        this yields every second.
        """
        # Typed in redis 8, untyped before: through a Callable, mypy is content with either.
        open_pubsub: Callable[..., Any] | None = getattr(self.redis, "pubsub", None)
        if open_pubsub is None:
            yield from _every_second(deadline)
            return
        pubsub = open_pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.keys.done_channel(run_id))
            yield None
            while deadline is None or time.monotonic() < deadline:
                pubsub.get_message(timeout=_next_wait(deadline))
                yield None
        finally:
            pubsub.close()

    # -- counters -------------------------------------------------------------

    def stats(self, ref: str) -> dict[str, int]:
        """Handoffs of a version over the kept scorecard: ``ok:{step}`` and ``bad:{edge}``."""
        now_hour = int(self.scores.now() // 3600)
        hours = self.scores.hours(ref, range(now_hour - KEEP_HOURS // 3600, now_hour + 1))
        out: dict[str, int] = {}
        for counts in hours.values():
            for field, value in counts.items():
                kind, _, rest = field.partition(":")
                name = f"ok:{rest.rsplit(':', 2)[0]}" if kind == "ok" else field
                if kind in ("ok", "bad"):
                    out[name] = out.get(name, 0) + int(value)
        return out

    def versions(self, name: str) -> list[int]:
        """Every registered version of a workflow, oldest first."""
        raw = cast(list[bytes], self.redis.hkeys(self.keys.workflow(name)))
        return sorted(int(v) for v in raw)

    def shape(self, ref: str) -> Shape:
        """What the scorecard's figures need of a version's plan."""
        from orchestrator.scorecard.figures import Shape  # noqa: PLC0415

        meta = self.redis.hget(self.keys.plan(ref), META)
        edges = tuple((u, s) for u, s in json.loads(meta)["edges"]) if meta else ()
        queues = {step: record["queue"] for step, record in self.plan_steps(ref).items()}
        return Shape(edges=edges, queues=queues)

    def coverage(self, ref: str) -> set[tuple[str, str]]:
        """Edges ``(upstream, step)`` some run of this version has taken."""
        members = cast(set[bytes], self.redis.smembers(self.keys.edges(ref)))
        return {cast(tuple[str, str], tuple(text(m).split(">", 1))) for m in members}

    def illegal_transitions(self) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.illegal))
        return {k.decode(): int(v) for k, v in raw.items()}


def _every_second(deadline: float | None) -> Iterator[None]:
    yield None
    while deadline is None or time.monotonic() < deadline:
        time.sleep(_next_wait(deadline))
        yield None


def _next_wait(deadline: float | None) -> float:
    """A second, or what is left before ``deadline`` if less."""
    return 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
