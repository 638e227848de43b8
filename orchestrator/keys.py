"""Every Redis key the orchestrator uses, named in one place.

``LAYOUT`` below is the one source: the Python ``Keys`` methods format its
patterns, and the Lua scripts name keys as ``K.items(RUN, s)``, which the
script assembler renders from the same patterns (store/render.py), so no
script builds a key by concatenation and the two sides cannot drift apart.
``P`` is ``ORCH_KEY_PREFIX`` (default ``orch:``).

Celery's own queue lists (named by the queue, see ``messages.queue_list_key``)
are kombu's, written by the dispatch scripts in kombu's Redis wire format.
Every key of a finished run expires after ``ORCH_RUN_TTL``. The fields inside
the run hash are named in ``orchestrator.fields``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class KeySpec:
    """One key (or family of keys): its pattern after the prefix, Redis type and meaning."""

    name: str
    pattern: str
    kind: str
    doc: str

    @cached_property
    def params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.pattern))


LAYOUT: tuple[KeySpec, ...] = (
    KeySpec("workflow", "wf:{name}", "HASH", "version -> canonical spec JSON (immutable)"),
    KeySpec(
        "workflows",
        "workflows",
        "SET",
        'every registered workflow name (the API\'s listing, never a scan); "" once a reader has '
        "added the names registered before this set existed",
    ),
    KeySpec("plan", "plan:{ref}", "HASH", "step records and message templates (PLAN_FIELDS)"),
    KeySpec("queues", "queues", "SET", "Celery queues named by registered workflows"),
    KeySpec("run", "run:{run}", "HASH", "run fields and {step}.{field} step fields (fields.py)"),
    KeySpec("events", "run:{run}:events", "LIST", "event history, one JSON object per decision"),
    KeySpec(
        "items", "run:{run}:items:{step}", "HASH", "element index -> JSON, of a mapped-over step"
    ),
    KeySpec(
        "parts", "run:{run}:parts:{step}", "HASH", "per-element fields of a map step (fields.py)"
    ),
    KeySpec(
        "ready",
        "run:{run}:ready:{queue}",
        "LIST",
        '"{step}" or "{step}|{element}" made ready for the run\'s lanes (claiming.lua)',
    ),
    KeySpec("idempotency", "key:{workflow}:{key}", "STRING", "run id submitted under a key"),
    KeySpec("runs", "runs", "ZSET", "run id scored by creation time (listing)"),
    KeySpec(
        "epoch",
        "epoch",
        "STRING",
        'the data\'s epoch, JSON {"id", "since"}, set at first use; new run ids start with its '
        "id, and its absence after use means Redis lost its data (epoch.py)",
    ),
    KeySpec(
        "lost_epochs",
        "lost",
        "HASH",
        'epoch id -> JSON {"noticed", "by", "now"}: epochs whose data a process saw vanish',
    ),
    KeySpec(
        "live",
        "live",
        "SET",
        "run ids not in a terminal state: what the reconciler looks through (reconcile.lua)",
    ),
    KeySpec(
        "delayed",
        "delayed",
        "ZSET",
        "messages waiting for a retry or an admission, scored by due time (dispatch.lua)",
    ),
    KeySpec(
        "backlog",
        "backlog:{workflow}",
        "ZSET",
        "runs of a workflow waiting for their first attempt, by submit time (admission)",
    ),
    KeySpec(
        "key_backlog",
        "backlog:{workflow}:{key}",
        "ZSET",
        "the same, of one fairness key",
    ),
    KeySpec(
        "backlog_keys",
        "backlog-keys:{workflow}",
        "SET",
        "fairness keys that put runs of a workflow in a backlog (orch queues reads them)",
    ),
    KeySpec(
        "concurrency_keys",
        "concurrency-keys",
        "SET",
        "ref|key of every concurrency key in use (orch queues reads them)",
    ),
    KeySpec(
        "run_slots",
        "slots:{ref}:{key}",
        "ZSET",
        "runs holding a slot of a concurrency key (concurrency.max_runs), by when they took it",
    ),
    KeySpec(
        "run_waiting",
        "waiting:{ref}:{key}",
        "LIST",
        "runs of a concurrency key waiting (PENDING) for a slot, oldest first",
    ),
    KeySpec(
        "refused",
        "stats:refused",
        "HASH",
        '"{workflow}" or "{workflow}:{key}" -> submits refused by admission control',
    ),
    KeySpec(
        "fair_keys",
        "fair:{list}",
        "ZSET",
        "fairness keys with work held back from a kombu list, by stride pass (fair.lua)",
    ),
    KeySpec(
        "fair_held",
        "fair:{list}:held:{key}",
        "LIST",
        "messages of one fairness key held back from a kombu list, oldest first",
    ),
    KeySpec("fair_weights", "fair:{list}:weights", "HASH", "fairness key -> its weight"),
    KeySpec("fair_clock", "fair:{list}:clock", "STRING", "the pass of the last message released"),
    KeySpec("fair_lists", "fair:lists", "SET", "kombu lists with work held back for fairness"),
    KeySpec(
        "levels",
        "levels:{queue}",
        "SET",
        "priorities above 0 the queue's messages were sent at, and h{p} while its list of "
        "priority p holds work back for fairness (a lane's yield checks only these)",
    ),
    KeySpec("timeouts", "timeouts", "ZSET", '"{run}|{step}" of waiting steps, by their deadline'),
    KeySpec(
        "deadlines",
        "deadlines",
        "ZSET",
        "run ids with a `deadline`, by when it passes (upkeep cancels them; a run's end drops it)",
    ),
    KeySpec(
        "schedules",
        "schedules",
        "ZSET",
        "schedule names by their next tick (inf while paused); every worker's ticker reads it",
    ),
    KeySpec(
        "schedule",
        "schedule:{name}",
        "HASH",
        "one schedule: its spec JSON and its ticker state (fields.py SCHEDULE_FIELDS)",
    ),
    KeySpec(
        "leases",
        "leases",
        "ZSET",
        '"{run}|{step}|{index}|{token}" of running attempts, by lease expiry (heart-beaten)',
    ),
    KeySpec(
        "score_minute",
        "score:{ref}:m:{minute}",
        "HASH",
        "scorecard counters of a version in one minute (fields.py SCORE_FIELDS); 6 h",
    ),
    KeySpec(
        "score_hour",
        "score:{ref}:h:{hour}",
        "HASH",
        "the same counters summed over an hour, rolled up from its minutes; 31 d",
    ),
    KeySpec("score_rolled", "score:{ref}:rolled", "STRING", "the last minute rolled into hours"),
    KeySpec("score_active", "score:active", "ZSET", "versions by their last submit or run end"),
    KeySpec("edges", "stats:{ref}:edges", "SET", '"{upstream}>{step}" edges some run took'),
    KeySpec("illegal", "stats:illegal", "HASH", '"{kind}:{from}>{to}" -> refused transitions'),
    KeySpec("dep_bucket", "dep:{dep}:bucket", "HASH", "token bucket of a rate limit: tokens, ts"),
    KeySpec("dep_slots", "dep:{dep}:slots", "ZSET", "tokens holding a concurrency slot, by expiry"),
    KeySpec("dep_breaker", "dep:{dep}:breaker", "HASH", "circuit breaker: state, until, probe"),
    KeySpec(
        "dep_calls", "dep:{dep}:{kind}", "ZSET", "calls in the last 10 s: first, retry, ok, fail"
    ),
    KeySpec(
        "contract",
        "contract:{ref}",
        "HASH",
        'step -> its parameters\' JSON Schemas; "__hash__" -> the content hash (contracts.py)',
    ),
    KeySpec("done_channel", "done:{run}", "PUBSUB", "told the end state when the run ends"),
    KeySpec(
        "worker",
        "worker:{hostname}",
        "STRING",
        "presence of a live worker (JSON: queues, instance, pid, host); expires 10 s after",
    ),
    KeySpec(
        "capacity",
        "capacity:{queue}",
        "ZSET",
        '"{hostname}|{concurrency}" of live workers on the queue, by when their beat runs out',
    ),
)

_BY_NAME = {spec.name: spec for spec in LAYOUT}


@dataclass(frozen=True)
class Keys:
    """The layout under one prefix, for Python callers."""

    prefix: str = "orch:"

    def _key(self, name: str, *values: str) -> str:
        spec = _BY_NAME[name]
        if len(values) != len(spec.params):
            raise TypeError(f"key {name} takes {', '.join(spec.params)}")
        return self.prefix + spec.pattern.format_map(dict(zip(spec.params, values, strict=True)))

    def workflow(self, name: str) -> str:
        return self._key("workflow", name)

    @property
    def workflows(self) -> str:
        return self._key("workflows")

    def plan(self, ref: str) -> str:
        return self._key("plan", ref)

    @property
    def queues(self) -> str:
        return self._key("queues")

    def run(self, run_id: str) -> str:
        return self._key("run", run_id)

    def events(self, run_id: str) -> str:
        return self._key("events", run_id)

    def items(self, run_id: str, step: str) -> str:
        return self._key("items", run_id, step)

    def parts(self, run_id: str, step: str) -> str:
        return self._key("parts", run_id, step)

    def ready(self, run_id: str, queue: str) -> str:
        return self._key("ready", run_id, queue)

    def idempotency(self, workflow: str, key: str) -> str:
        return self._key("idempotency", workflow, key)

    @property
    def runs(self) -> str:
        return self._key("runs")

    @property
    def epoch(self) -> str:
        return self._key("epoch")

    @property
    def lost_epochs(self) -> str:
        return self._key("lost_epochs")

    @property
    def live(self) -> str:
        return self._key("live")

    @property
    def delayed(self) -> str:
        return self._key("delayed")

    def backlog(self, workflow: str) -> str:
        return self._key("backlog", workflow)

    def key_backlog(self, workflow: str, key: str) -> str:
        return self._key("key_backlog", workflow, key)

    def backlog_keys(self, workflow: str) -> str:
        return self._key("backlog_keys", workflow)

    @property
    def concurrency_keys(self) -> str:
        return self._key("concurrency_keys")

    def run_slots(self, ref: str, key: str) -> str:
        return self._key("run_slots", ref, key)

    def run_waiting(self, ref: str, key: str) -> str:
        return self._key("run_waiting", ref, key)

    @property
    def refused(self) -> str:
        return self._key("refused")

    def fair_keys(self, list_key: str) -> str:
        return self._key("fair_keys", list_key)

    def fair_held(self, list_key: str, key: str) -> str:
        return self._key("fair_held", list_key, key)

    def fair_weights(self, list_key: str) -> str:
        return self._key("fair_weights", list_key)

    def fair_clock(self, list_key: str) -> str:
        return self._key("fair_clock", list_key)

    @property
    def fair_lists(self) -> str:
        return self._key("fair_lists")

    def levels(self, queue: str) -> str:
        return self._key("levels", queue)

    @property
    def timeouts(self) -> str:
        return self._key("timeouts")

    @property
    def deadlines(self) -> str:
        return self._key("deadlines")

    @property
    def schedules(self) -> str:
        return self._key("schedules")

    def schedule(self, name: str) -> str:
        return self._key("schedule", name)

    @property
    def leases(self) -> str:
        return self._key("leases")

    def score_minute(self, ref: str, minute: int) -> str:
        return self._key("score_minute", ref, str(minute))

    def score_hour(self, ref: str, hour: int) -> str:
        return self._key("score_hour", ref, str(hour))

    def score_rolled(self, ref: str) -> str:
        return self._key("score_rolled", ref)

    @property
    def score_active(self) -> str:
        return self._key("score_active")

    def edges(self, ref: str) -> str:
        return self._key("edges", ref)

    @property
    def illegal(self) -> str:
        return self._key("illegal")

    def dep_bucket(self, dep: str) -> str:
        return self._key("dep_bucket", dep)

    def dep_slots(self, dep: str) -> str:
        return self._key("dep_slots", dep)

    def dep_breaker(self, dep: str) -> str:
        return self._key("dep_breaker", dep)

    def dep_calls(self, dep: str, kind: str) -> str:
        return self._key("dep_calls", dep, kind)

    def done_channel(self, run_id: str) -> str:
        return self._key("done_channel", run_id)

    def contract(self, ref: str) -> str:
        return self._key("contract", ref)

    def worker(self, hostname: str) -> str:
        return self._key("worker", hostname)

    def capacity(self, queue: str) -> str:
        return self._key("capacity", queue)


def reference() -> str:
    """The layout as a Markdown table (docs/ENGINE.md embeds it; a test keeps it current)."""
    rows = ["| key (after the prefix) | type | meaning |", "|---|---|---|"]
    rows += [f"| `{s.pattern}` | {s.kind} | {s.doc.replace('|', '&#124;')} |" for s in LAYOUT]
    return "\n".join(rows) + "\n"
