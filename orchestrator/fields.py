"""Every field the engine stores inside a run, and every field of a plan record.

Run hashes hold one small string per field for every step of every run, so
the stored names stay short (``fetch.att``); this module is the one place that
says what each short name means. The Lua scripts write ``hget(s ..
SF.attempts)`` (``RF`` run fields, ``SF`` step fields, ``PF`` element fields),
never a bare ``'.att'``; the script assembler renders the names into the
stored forms (store/render.py), and a test refuses any field literal in the
Lua. ``status.py`` translates the stored names into the public status
document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldSpec:
    name: str
    stored: str
    doc: str


#: Fields of the run hash (``K.run(id)``) that describe the run itself.
RUN_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("state", "state", "the run's state (states.RunState)"),
    FieldSpec("workflow", "wf", "workflow ref name:version the run keeps for its life"),
    FieldSpec("input", "input", "the run input, JSON"),
    FieldSpec("created_at", "created_at", "Redis time of submit, epoch seconds"),
    FieldSpec("finished_at", "finished_at", "Redis time the run reached a terminal state"),
    FieldSpec("key", "key", "the idempotency key's full Redis key, or ''"),
    FieldSpec("left", "left", "steps not yet succeeded or skipped; 0 ends the run SUCCEEDED"),
    FieldSpec("result", "result", "the run's result JSON once SUCCEEDED"),
    FieldSpec("error", "error", "why the run failed (or compensated, or was cancelled)"),
    FieldSpec("cause", "cause", "what made a run compensate, kept while a compensation failed"),
    FieldSpec("inflight", "inflight", "attempts claimed and not yet recorded (saga waits for 0)"),
    FieldSpec("completed", "done", "compensable steps that succeeded, in order, comma-ended"),
    FieldSpec("undoing", "undoing", "the step whose compensation is in progress, or ''"),
    FieldSpec("undid", "undid", "'1' once any compensation started"),
    FieldSpec("resumed_from", "resumed_from", "the FAILED run this one resumes"),
    FieldSpec("resumed_as", "resumed_as", "the run that resumed this FAILED one"),
    FieldSpec(
        "context",
        "ctx",
        "JSON object the producer's hooks carry with the run (a W3C traceparent, say)",
    ),
    FieldSpec(
        "deadline", "deadline", "seconds the run may take from submit (`deadline:`), or absent"
    ),
    FieldSpec("deadline_at", "deadline_at", "Redis time at which the deadline cancels the run"),
    FieldSpec("parent", "parent", "a child run's parent: run|step|element index (or '')"),
    FieldSpec("depth", "depth", "how deep a child run is nested: its parent's depth + 1"),
    FieldSpec(
        "notify", "notify", "the message a child run queues for its parent step when it ends"
    ),
    FieldSpec("notify_queue", "notify_q", "the kombu list that message goes to"),
    FieldSpec("priority", "prio", "queue priority 0-9, higher runs sooner; absent means 0"),
    FieldSpec("fairness_key", "fkey", "the run's fairness key (tenant), or absent"),
    FieldSpec("fairness_weight", "fw", "its key's weight when not 1 (fair.lua)"),
    FieldSpec("concurrency_key", "ckey", "its concurrency key: it holds or waits for a slot"),
    FieldSpec("queued", "queued", "'1' while the run waits for its first attempt (K.backlog)"),
)

#: Fields of one step inside the run hash, stored as ``{step}{stored}``.
STEP_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("state", ".state", "the step's state (states.StepState); absent means PENDING"),
    FieldSpec("attempts", ".att", "attempts started (all elements, for a map step)"),
    FieldSpec("queued_at", ".q", "when the step became runnable (queued, or waiting)"),
    FieldSpec("started_at", ".s", "when its first attempt started"),
    FieldSpec("finished_at", ".f", "when it succeeded, failed or was skipped"),
    FieldSpec("error", ".err", "the last failed attempt's error JSON {type, message, attempt}"),
    FieldSpec("output", ".out", "its output JSON"),
    FieldSpec("token", ".tok", "the token of the attempt that may record an outcome"),
    FieldSpec("worker", ".by", "the worker of its latest attempt"),
    FieldSpec("elements", ".n", "elements of a map step (or of the list it maps over)"),
    FieldSpec("elements_left", ".left", "elements of a map step not yet succeeded"),
    FieldSpec("upstreams_done", ".got", "upstreams that succeeded or were skipped (the join)"),
    FieldSpec("upstreams_skipped", ".skp", "upstreams that were skipped"),
    FieldSpec("gated", ".gate", "'1' while its `when` predicate waits to be evaluated"),
    FieldSpec("reserved", ".rsv", "'1' while it holds a reserved rate-limit token"),
    FieldSpec("fallback", ".fb", "'1' when its output came from its fallback"),
    FieldSpec("undo_token", ".ctok", "the token of its compensation attempt"),
    FieldSpec("undo_attempts", ".catt", "compensation attempts started"),
    FieldSpec("undo_queued_at", ".cq", "when its compensation was queued"),
    FieldSpec("undo_started_at", ".cs", "when its latest compensation attempt started"),
    FieldSpec("undo_finished_at", ".cf", "when its compensation ended"),
    FieldSpec("wake_at", ".wake", "when a sleeping step wakes (Redis time), while WAITING"),
    FieldSpec(
        "child",
        ".child",
        "the child run its latest attempt started (a workflow: step); of a map, every "
        "child started, comma-ended",
    ),
)

#: Per-element fields of a map step in ``K.parts(run, step)``, stored as ``{stored}{index}``.
PART_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("output", "o", "the element's output JSON"),
    FieldSpec("token", "t", "the token of the element's current attempt"),
    FieldSpec("attempts", "a", "the element's attempts"),
    FieldSpec("reserved", "r", "'1' while the element holds a reserved rate-limit token"),
    FieldSpec("started_at", "s", "when the element's current attempt started"),
    FieldSpec("child", "c", "the child run the element's attempt started, while it runs"),
    FieldSpec("children", "k", "the child run of the element's latest attempt (kept)"),
)

#: Fields of a scorecard bucket (``K.score_minute`` / ``K.score_hour``); ``{qb}`` is a
#: queue-delay bucket (scorecard/histogram.py), ``{f|r}`` a first attempt or a retry.
SCORE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("succeeded", "ok:{step}:{qb}:{f|r}", "attempts of the step that succeeded"),
    FieldSpec("failed", "fail:{step}:{qb}:{f|r}", "attempts that failed (retried or final)"),
    FieldSpec("failed_seconds", "failsec:{step}", "seconds spent in the step's failed attempts"),
    FieldSpec("bad_handoff", "bad:{edge}", "attempts whose input on this edge failed validation"),
    FieldSpec(
        "ended",
        "end:{state}:{compensated}:{edges}",
        "runs that ended in state; compensated 1 when a compensation ran; edges: the plan "
        "edges the run took, as a hex bit mask over the plan's edge list",
    ),
    FieldSpec("undone", "undo:ok", "compensations that succeeded"),
    FieldSpec("undo_failed", "undo:fail", "compensations that failed for good"),
)

#: Fields of a schedule's hash (``K.schedule(name)``); Lua writes them as ``CF.next``.
SCHEDULE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("spec", "spec", "the schedule's definition, JSON (orchestrator/schedules/model.py)"),
    FieldSpec("next", "next", "the first tick not yet handled, epoch seconds"),
    FieldSpec("held", "held", "a tick `overlap: queue` holds until the previous run ends, or ''"),
    FieldSpec("last_tick", "last_tick", "the latest tick that started a run"),
    FieldSpec("last_run", "last_run", "the run that tick started"),
    FieldSpec("skipped", "skipped", "ticks skipped because the previous run was still live"),
    FieldSpec("paused", "paused", "'1' while paused"),
    FieldSpec("paused_at", "paused_at", "when it was last paused"),
    FieldSpec("resumed_at", "resumed_at", "when it was last resumed: ticks before it are missed"),
    FieldSpec("error", "error", "why the latest tick could not start a run, or ''"),
)

#: Fields of a plan hash (``K.plan(ref)``), written once when the version is registered.
#: A step's Celery message templates are kept out of its record: most steps never get a
#: message of their own (a runner lane claims them), so no script decodes a template it
#: does not use, and the records that scripts are handed stay small.
#: Each step's plan record (below) is stored under the step's own name; the step's
#: other fields as ``{step}{stored}``.
PLAN_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("meta", "__meta__", "the plan-wide record: orders, roots, finals, edges, waits"),
    FieldSpec("message", ".msg", "a step's Celery message template (messages.py)"),
    FieldSpec("undo_message", ".undo", "a step's compensation message template"),
)

#: Keys of a plan record (``K.plan(ref)`` field per step), built by ``store.records``.
PLAN_RECORD: tuple[FieldSpec, ...] = (
    FieldSpec("upstreams", "upstreams", "steps it waits for"),
    FieldSpec("downstreams", "downstreams", "steps that wait for it"),
    FieldSpec("queue", "queue", "the kombu list its messages go to"),
    FieldSpec("mapped_over", "mapped_over", "true when a step maps over its output"),
    FieldSpec("map", "map", "the step whose list it maps over"),
    FieldSpec("signal", "signal", "the signal a wait_for step waits for"),
    FieldSpec("wait_timeout", "wait_timeout", "seconds a wait_for step waits"),
    FieldSpec("on_timeout", "on_timeout", "fail | skip, when the wait times out"),
    FieldSpec("dependency", "dependency", "its dependency's limits (compiler._dependency)"),
    FieldSpec("fallback", "fallback", "true when it has a fallback"),
    FieldSpec("gated", "gated", "true when a `when` predicate gates it"),
    FieldSpec("compensable", "compensable", "true when it declares a compensation"),
    FieldSpec("trigger", "trigger", "none_failed | any_succeeded; absent: all_succeeded"),
    FieldSpec("time_limited", "time_limited", "true when its attempts have a timeout"),
    FieldSpec("sleep", "sleep", "seconds a sleep step waits"),
    FieldSpec("until", "until", "step.field path of an upstream output: the time a sleep wakes"),
    FieldSpec("child", "child", "the child workflow name:version a workflow: step starts"),
    FieldSpec("max_depth", "max_depth", "the deepest nesting at which it may start its child"),
    FieldSpec("priority", "priority", "its own priority 0-9; absent: its run's"),
)

#: Keys of a dependency record inside a plan record (see deps.lua).
DEPENDENCY_RECORD: tuple[FieldSpec, ...] = (
    FieldSpec("name", "name", "the dependency's name"),
    FieldSpec("rate", "rate", "calls per second"),
    FieldSpec("burst", "burst", "bucket size"),
    FieldSpec("concurrency", "concurrency", "calls in flight at once"),
    FieldSpec("budget_ratio", "budget_ratio", "retries allowed per first attempt"),
    FieldSpec("budget_min_per_s", "budget_min_per_s", "retries per second always allowed"),
    FieldSpec("failure_rate", "failure_rate", "failure share that opens the breaker"),
    FieldSpec("min_calls", "min_calls", "calls in the window before it may open"),
    FieldSpec("open_for", "open_for", "seconds open before a half-open probe"),
)


def stored(table: tuple[FieldSpec, ...], name: str) -> str:
    """The stored name of a field, by its readable name (KeyError when undeclared)."""
    for spec in table:
        if spec.name == name:
            return spec.stored
    raise KeyError(name)


def step_field(step: str, name: str) -> str:
    return step + stored(STEP_FIELDS, name)


def reference() -> str:
    """Every table as Markdown, for docs/ENGINE.md (a test keeps the doc current)."""
    out = []
    sections = (
        ("Run fields", RUN_FIELDS),
        ("Step fields (`{step}` + suffix)", STEP_FIELDS),
        ("Map element fields (prefix + `{index}`)", PART_FIELDS),
        ("Scorecard bucket fields", SCORE_FIELDS),
        ("Schedule fields", SCHEDULE_FIELDS),
        ("Plan hash fields (a step's record under its name; others `{step}{stored}`)", PLAN_FIELDS),
        ("Plan record", PLAN_RECORD),
        ("Dependency record", DEPENDENCY_RECORD),
    )
    for title, table in sections:
        out += [f"#### {title}", "", "| name | stored | meaning |", "|---|---|---|"]
        out += [f"| {f.name} | `{f.stored}` | {f.doc.replace('|', '&#124;')} |" for f in table]
        out.append("")
    return "\n".join(out)
