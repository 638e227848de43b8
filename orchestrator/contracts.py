"""Step parameter contracts kept in Redis, so data can be checked where step code is not.

A step's annotations are its handoff contract, but only a process that imports
the step can read them: a web app that submits runs, or ``orch signal`` on an
operator's laptop, may not ship the step code. Such data used to go unchecked,
silently, until a worker refused it with the run already under way.

So whenever a workflow's steps are imported anyway (``orch validate
--import``, the import check at ``orch worker`` start), each task step's
contract is stored per workflow version (``Keys.contract``): for every
parameter, whether it is required and the JSON Schema pydantic gives for its
annotation (null when it has none or pydantic cannot describe it; such a
parameter accepts anything). A ``__hash__`` field records the content hash
the contracts were taken from; contracts of other content are ignored.

The client then checks, without importing user code:
- a run input, for a workflow that declares no ``input:`` (a declared input is
  checked by ``orchestrator.inputs``): every field a step parameter is filled
  from must fit its schema, and a required one must be there;
- signal data, when the steps it feeds cannot be imported here.

When a contract is not known, it says so with a ``ContractNotChecked``
warning (``orch`` prints it as one line) rather than skipping in silence.
JSON Schema is checked with ``jsonschema``, so values must have their JSON
types ("7" is not an integer), which is a little stricter than pydantic's lax
mode on the worker.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from orchestrator.errors import SpecError
from orchestrator.keys import Keys

if TYPE_CHECKING:
    import redis

    from orchestrator.spec import Workflow
    from orchestrator.steps import StepFunction

HASH_FIELD = "__hash__"
#: A step's contract: {"params": {name: {"schema": dict | None, "required": bool,
#: "none_ok": bool}}}
Contract = dict[str, Any]


class ContractNotChecked(UserWarning):
    """Data was not checked: neither the step code nor its stored contract is available."""


def describe(fn: StepFunction) -> Contract:
    """The contract of one step function, as stored."""
    from pydantic import PydanticUserError  # noqa: PLC0415

    from orchestrator.steps import MISSING  # noqa: PLC0415

    params: dict[str, Any] = {}
    for p in fn.params:
        schema = None
        if p.adapter is not None:
            try:
                schema = p.adapter.json_schema()
            except (PydanticUserError, TypeError, ValueError):
                schema = None  # an annotation JSON Schema cannot express: anything goes
        params[p.name] = {
            "schema": schema,
            "required": p.default is MISSING,
            "none_ok": p.default is None,  # the worker passes None through for such a default
        }
    return {"params": params}


def from_imports(wf: Workflow, steps: Iterable[str] | None = None) -> dict[str, Contract]:
    """Import the task steps among ``steps`` (default all) and describe them."""
    from orchestrator.steps import StepFunction, import_task  # noqa: PLC0415

    out: dict[str, Contract] = {}
    for name in wf.steps if steps is None else steps:
        task = wf.steps[name].task
        if task is not None:
            where = f"step {name!r}, field 'task'"
            out[name] = describe(StepFunction.wrap(import_task(task, where=where)))
    return out


class ContractStore:
    """Read and write the stored contracts of workflow versions."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def save(self, wf: Workflow, contracts: Mapping[str, Contract]) -> None:
        key = self.keys.contract(wf.ref)
        stored = cast(bytes | None, self.redis.hget(key, HASH_FIELD))
        with self.redis.pipeline() as pipe:
            if stored is not None and stored.decode() != wf.content_hash:
                pipe.delete(key)  # taken from other content under the same ref: replace them
            fields: dict[str, str] = {HASH_FIELD: wf.content_hash}
            fields |= {name: json.dumps(c, separators=(",", ":")) for name, c in contracts.items()}
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            pipe.execute()

    def load(self, wf: Workflow) -> dict[str, Contract]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys.contract(wf.ref)))
        if raw.get(HASH_FIELD.encode(), b"").decode() != wf.content_hash:
            return {}
        return {k.decode(): json.loads(v) for k, v in raw.items() if k.decode() != HASH_FIELD}


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - only when data is checked

    return Draft202012Validator(json.loads(schema_json))


def param_problem(param: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` does not fit one stored parameter, in one line; None when it fits."""
    if value is None and param.get("none_ok"):
        return None
    return schema_problem(param.get("schema"), value)


def schema_problem(schema: dict[str, Any] | None, value: Any) -> str | None:
    """Why ``value`` does not fit ``schema``, in one line; None when it fits."""
    if schema is None:
        return None
    errors = sorted(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value), key=str)
    if not errors:
        return None
    first = min(errors, key=lambda e: len(e.absolute_path))
    at = "".join(f"[{p!r}]" for p in first.absolute_path)
    return f"{first.message}{' at ' + at if at else ''}"


def _input_params(wf: Workflow, step: str, contract: Contract) -> dict[str, Any]:
    """The parameters of ``step`` that the run input fills (not upstream outputs)."""
    upstreams = set(wf.steps[step].upstreams)
    params = cast(dict[str, Any], contract["params"])
    return {name: p for name, p in params.items() if name not in upstreams}


def check_input(
    wf: Workflow, value: Mapping[str, Any], known: Mapping[str, Contract]
) -> str | None:
    """Refuse an undeclared run input that a step's stored contract refuses.

    Returns what could not be checked, for a ``ContractNotChecked`` warning that
    the caller gives once the run is accepted (a refused submit says one thing).
    """
    unknown = []
    for step, spec in wf.steps.items():
        if spec.task is None:
            continue
        contract = known.get(step)
        if contract is None:
            unknown.append(step)
            continue
        for name, p in _input_params(wf, step, contract).items():
            if name in value:
                problem = param_problem(p, value[name])
                if problem is not None:
                    raise SpecError(
                        f"field {name!r}: {problem} (parameter {name!r} of step {step!r})",
                        where="run input",
                    )
            elif p["required"]:
                raise SpecError(
                    f"field {name!r} is missing (step {step!r} needs it, and no upstream "
                    "step of that name fills it)",
                    where="run input",
                )
    if not unknown:
        return None
    return (
        f"the run input of {wf.ref} was not checked against step(s) {', '.join(unknown)}: "
        "no contract is stored for them (declare `input:`, or store contracts with "
        "`orch validate WORKFLOW --import`)"
    )


def check_signal(
    wf: Workflow, waiting: str, data: Any, targets: Iterable[str], known: Mapping[str, Contract]
) -> str | None:
    """Check signal data against the stored contracts of ``targets``, the steps it feeds.

    Returns what could not be checked (see ``check_input``).
    """
    unknown = []
    for step in targets:
        contract = known.get(step)
        if contract is None:
            unknown.append(step)
            continue
        p = contract["params"].get(waiting)
        problem = param_problem(p, data) if p is not None else None
        if problem is not None:
            raise SpecError(
                f"signal data does not fit: handoff {waiting} → {step}: {problem}",
                where=f"step {waiting!r}",
            )
    if not unknown:
        return None
    return (
        f"signal data for step {waiting!r} of {wf.ref} was not checked against step(s) "
        f"{', '.join(unknown)}: their code is not importable here and no contract is stored "
        "(`orch validate WORKFLOW --import` stores it)"
    )


def warn_unchecked(note: str | None) -> None:
    """Say that data went unchecked (``orch`` prints it as one ``orch: warning:`` line)."""
    if note is not None:
        warnings.warn(ContractNotChecked(note), stacklevel=3)
