"""Step functions: the ``@step`` decorator, ``StepContext`` and typed handoffs.

A step's parameters are its contract. A parameter named after an upstream step
receives that step's output, ``ctx`` receives the context, and any other
parameter is filled from the run input by name. Every value crosses a pydantic
``TypeAdapter`` built once per function, so a wrong shape is caught at the
edge it crossed instead of deep inside the step body.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, get_type_hints

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import HandoffError, NonRetryableError, PayloadTooLargeError, SpecError
from orchestrator.settings import Settings
from orchestrator.step_policy import check_module, not_a_step, split_path

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_PARAM = "ctx"
MISSING: Any = object()


@dataclass(frozen=True)
class StepContext:
    """What a running step may know about itself.

    ``idempotency_key`` is the same for every attempt and redelivery of one
    step of one run (and one element of a map), so passing it to an external
    API turns at-least-once execution into an exactly-once effect.
    """

    run_id: str
    workflow: str
    version: int
    step: str
    attempt: int
    index: int | None = None
    worker: str = ""
    compensating: bool = False
    is_cancelled: Callable[[], bool] | None = field(default=None, compare=False, repr=False)

    @property
    def idempotency_key(self) -> str:
        """Stable per step (and element); a compensation has its own, ending in ``/undo``."""
        base = f"{self.run_id}/{self.step}"
        base = base if self.index is None else f"{base}/{self.index}"
        return f"{base}/undo" if self.compensating else base

    @property
    def cancelled(self) -> bool:
        """True once the run is being cancelled: a long step may stop early."""
        return self.is_cancelled() if self.is_cancelled is not None else False


@dataclass(frozen=True)
class Param:
    name: str
    adapter: TypeAdapter[Any] | None
    default: Any


@dataclass
class StepFunction:
    """A callable plus the parameter contract derived from its annotations."""

    func: Callable[..., Any]
    path: str
    params: tuple[Param, ...] = field(default=())
    wants_context: bool = False

    @classmethod
    def wrap(cls, func: Callable[..., Any]) -> StepFunction:
        found = getattr(func, "__orch_step__", None)
        if isinstance(found, StepFunction):
            return found
        try:
            hints = get_type_hints(func)
        except Exception:  # unresolvable forward references: validate nothing
            hints = {}
        params: list[Param] = []
        wants_context = False
        for p in inspect.signature(func).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.name == CONTEXT_PARAM or hints.get(p.name) is StepContext:
                wants_context = True
                continue
            hint = hints.get(p.name)
            adapter = TypeAdapter(hint) if hint is not None else None
            default = MISSING if p.default is p.empty else p.default
            params.append(Param(p.name, adapter, default))
        path = f"{func.__module__}:{func.__qualname__}"
        return cls(func, path, tuple(params), wants_context)

    @cached_property
    def param_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    def params_required(self) -> list[str]:
        """Parameters with no default: each must be filled by a handoff."""
        return [p.name for p in self.params if p.default is MISSING]

    def bind(
        self,
        step: str,
        upstream: Mapping[str, Any],
        run_input: Mapping[str, Any],
        ctx: StepContext | None,
        *,
        only: str | None = None,
    ) -> dict[str, Any]:
        """Build keyword arguments, validating each handoff against its annotation.

        ``only`` checks just the parameter of that name (a signal's data, say).
        """
        kwargs: dict[str, Any] = {}
        for p in self.params:
            if only is not None and p.name != only:
                continue
            if p.name in upstream:
                edge, value = f"{p.name} → {step}", upstream[p.name]
            elif p.name in run_input:
                edge, value = f"input.{p.name} → {step}", run_input[p.name]
            elif p.default is not MISSING:
                continue
            else:
                raise NonRetryableError(
                    f"step {step!r}: parameter {p.name!r} is neither an upstream step "
                    "nor in the run input"
                )
            kwargs[p.name] = _validated(p, edge, value)
        if self.wants_context:
            kwargs[CONTEXT_PARAM] = ctx
        return kwargs


def _validated(p: Param, edge: str, value: Any) -> Any:
    if p.adapter is None or (value is None and p.default is None):
        return value
    try:
        return p.adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        where = f" at {loc}" if loc else ""
        raise HandoffError(f"handoff {edge}: {first['msg']}{where}", edge=edge) from None


def step(func: F) -> F:
    """Mark a function as a workflow step and precompute its handoff contract.

    Only marked functions may run as a spec's task, compensate, fallback or
    when. To run a library function, mark it in a module of your own and name
    that module in the spec: ``summarize = step(library.summarize)``.
    """
    func.__orch_step__ = StepFunction.wrap(func)  # type: ignore[attr-defined]
    return func


def is_step(obj: object) -> bool:
    """True for an object marked by ``@step``."""
    try:
        return isinstance(getattr(obj, "__orch_step__", None), StepFunction)
    except Exception:  # an object whose __getattr__ raises is no step
        return False


def import_task(
    path: str, *, where: str = "", modules: tuple[str, ...] | None = None
) -> Callable[..., Any]:
    """Import ``module:function`` if a spec may run it; raise a one-line error otherwise.

    A module outside ``modules`` (default ``ORCH_TASK_MODULES``, read now so
    every caller, the worker runtime included, applies it) is refused before it
    is imported; anything not marked ``@step`` is refused after. Both raise
    ``TaskRefusedError``, which is never retried.
    """
    module_name, parts = split_path(path, where=where)
    prefixes = Settings().task_module_prefixes if modules is None else modules
    check_module(module_name, prefixes, path, where=where)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in parts:
            obj = getattr(obj, part)
    except Exception as exc:
        raise SpecError(
            f"cannot import {path!r}: {type(exc).__name__}: {exc}", where=where
        ) from None
    if not callable(obj):
        raise SpecError(f"{path!r} is not callable", where=where)
    if not is_step(obj):
        raise not_a_step(path, where=where)
    return obj  # type: ignore[no-any-return]


def encode_output(value: Any, *, limit: int, what: str) -> str:
    """Serialise an output as JSON, refusing (never truncating) one above the cap."""
    try:
        data = pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise NonRetryableError(f"{what}: output is not JSON-serialisable: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"{what}: output is {len(data)} bytes, above ORCH_MAX_PAYLOAD_BYTES={limit}"
        )
    return data.decode()
