"""The workflow spec as pydantic models: what a YAML file or the Python DSL says.

Models are frozen and refuse unknown fields, so a typo in a spec is an error
rather than a silently ignored key. Durations and rates are normalised to
numbers here, which makes the canonical hash independent of spelling
(``0.5s`` and ``500ms`` are the same workflow).
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from orchestrator.errors import SpecError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


def parse_duration(value: object) -> object:
    """Accept seconds as a number or a string such as ``500ms``, ``10s``, ``1d``."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 500ms, 10s, 5m, 2h or 1d")
        return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    return value


def positive_duration(value: float | str | None, *, where: str) -> float | None:
    """A duration given to the API (``submit(deadline=...)``): seconds, or None; refuses
    anything that is not a positive duration, in one line naming ``where``."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise SpecError(str(exc), where=where) from None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise SpecError(f"{value!r} is not a positive duration such as 90s, 30m or 1h", where=where)
    return float(seconds)


def parse_rate(value: object) -> object:
    """Accept a rate as calls per second or a string such as ``60/m``."""
    if isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a rate such as 10/s, 60/m or 1000/h")
        return float(match.group(1)) / _UNITS[match.group(2)]
    return value


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(ge=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ]
        }
    ),
]
Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    Field(gt=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": _RATE.pattern},
            ]
        }
    ),
]
TaskPath = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")]
StepName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
#: ``step`` or ``step.field.field``: where in an upstream's output a sleep finds its wake-up time.
OutputPath = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$")]
#: The step kinds: a step is exactly one of them.
STEP_KINDS = ("task", "wait_for", "workflow", "sleep", "until")
#: Fields added after the first release: left out of the canonical JSON while unset, so
#: that a spec that does not use them keeps its content hash (and its stored version).
_LATER_FIELDS = frozenset(
    {"sleep", "until", "deadline", "workflow", "max_depth"}
    | {"priority", "fairness", "max_queued", "concurrency"}
)
#: A child workflow: its name, and optionally the version (``triage`` or ``triage:2``).
ChildRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*(:[1-9][0-9]*)?$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Model):
    """How a failing step is retried: bounded attempts, capped jittered backoff.

    The defaults are safe on purpose: three attempts and a one-minute cap, so
    a step that names no policy can neither retry forever nor sleep for hours.
    """

    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts in all, the first included."
    )
    initial: Duration = Field(default=1.0, description="Delay before the first retry.")
    multiplier: float = Field(
        default=2.0, ge=1.0, le=10.0, description="Growth of the delay per retry."
    )
    max: Duration = Field(default=60.0, description="Cap on any one delay.")
    jitter: Literal["full", "equal", "none"] = Field(
        default="full", description="How delays are randomised."
    )
    retry_on: tuple[str, ...] = Field(
        default=(), description="Exception types that retry; empty means all."
    )
    non_retryable: tuple[str, ...] = Field(
        default=(), description="Exception types that fail at once."
    )
    timeout: Duration | None = Field(default=None, description="Per-attempt time limit.")

    @model_validator(mode="after")
    def _initial_within_cap(self) -> RetryPolicy:
        if self.initial > self.max:
            raise ValueError(f"initial ({self.initial}s) is above max ({self.max}s)")
        return self


class RetryBudget(_Model):
    ratio: float = Field(default=0.1, ge=0, le=10, description="Retries allowed per first attempt.")
    min_per_s: float = Field(default=1.0, ge=0, description="Retries per second always allowed.")


class Breaker(_Model):
    failure_rate: float = Field(default=0.5, gt=0, le=1, description="Failure share that opens it.")
    min_calls: int = Field(default=20, ge=1, description="Calls in the window before it may open.")
    open_for: Duration = Field(default=30.0, description="Time open before a half-open probe.")


class Dependency(_Model):
    """A shared external resource; limits are enforced across all workers."""

    rate: Rate | None = Field(default=None, description="Calls per second, e.g. 60/m.")
    burst: float | None = Field(
        default=None,
        ge=1,
        description="Calls allowed at once after a quiet spell (default: rate × 1 s, at least 1).",
    )
    concurrency: int | None = Field(default=None, ge=1, description="Calls in flight at once.")
    retry_budget: RetryBudget | None = None
    breaker: Breaker | None = None


#: Queue priority: an integer 0-9, where a higher number runs sooner; 0 is the default.
Priority = Annotated[int, Field(ge=0, le=9, strict=True)]
#: Where a run's fairness key comes from: a field of its input.
InputPath = Annotated[str, Field(pattern=r"^input\.[A-Za-z_][A-Za-z0-9_]*$")]


class Fairness(_Model):
    """The tenant a run belongs to: its share of a busy queue, its admission limit."""

    key: InputPath = Field(description="The input field naming a run's tenant: input.FIELD.")
    weights: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=dict, description="A key's weight (default 1): its share of a busy queue."
    )
    max_queued: int | None = Field(
        default=None, ge=1, description="Runs of one key waiting to start before submit refuses."
    )

    def key_of(self, run_input: Any) -> str | None:
        return input_value(self.key, run_input)


def input_value(path: str, run_input: Any) -> str | None:
    """The value ``input.FIELD`` names in a run input, as a string; None when it is absent."""
    field_name = path.partition(".")[2]
    if not isinstance(run_input, dict) or run_input.get(field_name) is None:
        return None
    value = run_input[field_name]
    return value if isinstance(value, str) else json.dumps(value)


class Concurrency(_Model):
    """At most ``max_runs`` runs per key at once; see README "Queueing model"."""

    key: InputPath = Field(description="The input field whose value the limit is per: input.FIELD.")
    max_runs: int = Field(ge=1, le=10_000, description="Runs of one key running at once.")
    strategy: Literal["queue", "cancel_newest", "cancel_oldest"] = Field(
        default="queue",
        description="Beyond the limit: queue (wait, holding no worker), cancel_newest (the new "
        "run is cancelled) or cancel_oldest (the oldest running run is cancelled).",
    )


class StepSpec(_Model):
    """One node of the graph; see the README's spec reference for each field."""

    task: TaskPath | None = Field(default=None, description="module:function the step runs.")
    after: tuple[StepName, ...] = Field(default=(), description="Steps that must finish first.")
    map: StepName | None = Field(
        default=None, description="Run once per element of this step's list output."
    )
    queue: str | None = Field(
        default=None, pattern=r"^[\w.-]+$", description="Celery queue of the step."
    )
    dependency: str | None = Field(default=None, description="Declared dependency the step calls.")
    fallback: TaskPath | None = Field(
        default=None, description="Task run when the step fails for good."
    )
    wait_for: str | None = Field(default=None, description="Signal name the step waits for.")
    workflow: ChildRef | None = Field(
        default=None,
        description="Child workflow NAME[:VERSION] the step runs as a run of its own; "
        "its result is the step's output.",
    )
    max_depth: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Deepest nesting a child workflow step may start at (needed when the "
        "child can start its parent again).",
    )
    when: TaskPath | None = Field(default=None, description="Predicate over upstream outputs.")
    sleep: Duration | None = Field(
        default=None, description="A durable sleep: the step waits this long, holding no worker."
    )
    until: OutputPath | None = Field(
        default=None,
        description="A durable sleep until the time at this upstream output path (step.field): "
        "epoch seconds or an ISO-8601 time with an offset.",
    )
    timeout: Duration | None = Field(default=None, description="Time a wait_for step waits.")
    on_timeout: Literal["fail", "skip"] = "fail"
    trigger: Literal["all_succeeded", "none_failed", "any_succeeded"] = "all_succeeded"
    compensate: str | None = Field(
        default=None,
        pattern=r"^(none|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)$",
        description="module:function that undoes it, or none.",
    )
    effects: bool = Field(default=False, description="The step changes the outside world.")
    retry: RetryPolicy | None = Field(default=None, description="Overrides the workflow's policy.")
    cancel_grace: Duration | None = Field(
        default=None, description="Overrides the workflow's cancel_grace for this step."
    )
    priority: Priority | None = Field(
        default=None, description="Priority of this step's work, overriding the run's (0-9)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        kinds = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            named = ", ".join(f"'{k}'" for k in STEP_KINDS)
            raise ValueError(f"a step needs exactly one of {named}")
        return self

    @property
    def sleeps(self) -> bool:
        """A durable sleep step (``sleep:`` or ``until:``): it waits in Redis, on no worker."""
        return self.sleep is not None or self.until is not None

    @property
    def upstreams(self) -> tuple[str, ...]:
        """Every step this one waits for: ``after`` plus an undeclared ``map`` source."""
        if self.map is not None and self.map not in self.after:
            return (*self.after, self.map)
        return self.after


class Workflow(_Model):
    """A named, versioned DAG of steps. Immutable once a version is used."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)
    version: int = Field(ge=1)
    description: str = ""
    input: dict[str, str] | None = Field(
        default=None, description="Declared run input fields (name: type); enables the fill check."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Default step policy.")
    cancel_grace: Duration | None = Field(
        default=None,
        description="Time a running step may go on after its run is cancelled before it is "
        "interrupted; none: it runs to its end (it can watch ctx.cancelled).",
    )
    deadline: Duration | None = Field(
        default=None,
        gt=0,
        description="Time a run may take from submit; then it is cancelled, with compensation.",
    )
    dependencies: dict[str, Dependency] = Field(default_factory=dict)
    priority: Priority | None = Field(
        default=None, description="Default priority of its runs (0-9, higher runs sooner)."
    )
    fairness: Fairness | None = Field(
        default=None, description="Fairness key of its runs, for admission and listing."
    )
    max_queued: int | None = Field(
        default=None, ge=1, description="Runs waiting to start before submit refuses."
    )
    concurrency: Concurrency | None = Field(
        default=None, description="Runs of one key (say, one user) running at once."
    )
    steps: dict[StepName, StepSpec] = Field(min_length=1)

    def canonical_json(self) -> str:
        return json.dumps(
            _canonical(self.model_dump(mode="json")), sort_keys=True, separators=(",", ":")
        )

    @cached_property
    def content_hash(self) -> str:
        """Identity of the content: two specs with the same hash run identically.

        Kept on the (frozen) object after the first call: a submit asks for it several
        times (register, the contract checks), and a model_copy with changes must not be
        made of a Workflow (none is).
        """
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def policy_for(self, step: str) -> RetryPolicy:
        return self.steps[step].retry or self.retry

    def grace_for(self, step: str) -> float | None:
        own = self.steps[step].cancel_grace
        return own if own is not None else self.cancel_grace

    @classmethod
    def from_json(cls, text: str | bytes) -> Workflow:
        return cls.model_validate(json.loads(text))


def _canonical(data: dict[str, Any]) -> dict[str, Any]:
    """The dump without the later fields a spec leaves unset (see ``_LATER_FIELDS``)."""

    def trimmed(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if not (k in _LATER_FIELDS and v is None)}

    out = trimmed(data)
    out["steps"] = {name: trimmed(step) for name, step in data["steps"].items()}
    return out


def json_schema() -> dict[str, Any]:
    return Workflow.model_json_schema()
