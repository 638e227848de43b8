"""What the client checks before it writes: run inputs, signal data, and Redis being there.

A run input is checked against the workflow's declared ``input:``
(``orchestrator.inputs``) or, without one, against the steps' stored
parameter contracts (``orchestrator.contracts``). Signal data is checked
against the steps it feeds: with their code where the client can import it,
else with their stored contracts, else the client warns that it could not.
Everything here runs before the first write, so a refused value changes
nothing in Redis.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from orchestrator.errors import (
    HandoffError,
    PayloadTooLargeError,
    RedisOutOfMemoryError,
    RedisUnavailableError,
    SpecError,
)
from orchestrator.keys import Keys
from orchestrator.redis_errors import out_of_memory_errors, outage_errors

if TYPE_CHECKING:
    import redis

    from orchestrator.spec import Workflow

#: Seconds before a client reads a version's step contracts again while some are missing.
CONTRACT_RECHECK = 10.0


class reachable:
    """Turn a Redis connection failure into ``RedisUnavailableError``, and a write refused
    for want of memory into ``RedisOutOfMemoryError`` (both exit 3)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, outage_errors()):
            from orchestrator.connection import redact  # noqa: PLC0415

            raise RedisUnavailableError(
                f"Redis at {redact(self.url)} is unreachable: {exc}"
            ) from None
        if isinstance(exc, out_of_memory_errors()):
            from orchestrator.connection import redact  # noqa: PLC0415

            raise RedisOutOfMemoryError(
                f"Redis at {redact(self.url)} is out of memory (maxmemory reached): nothing "
                "was written; runs already accepted go on once memory frees"
            ) from None


def encode_input(value: Mapping[str, Any], limit: int) -> str:
    if not isinstance(value, Mapping):
        raise SpecError("run input must be a JSON object", where="input")
    return encode_value(value, limit, where="input")


def encode_value(value: Any, limit: int, *, where: str) -> str:
    import pydantic_core  # noqa: PLC0415

    try:
        data = pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise SpecError(f"not JSON-serialisable: {exc}", where=where) from None
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"{where}: {len(data)} bytes, above ORCH_MAX_PAYLOAD_BYTES={limit}"
        )
    return data.decode()


class DataChecks:
    """One client's checks, with the stored contracts it has read, per workflow version."""

    def __init__(self, client: redis.Redis, keys: Keys, url: str) -> None:
        self.redis = client
        self.keys = keys
        self.url = url
        self._known: dict[str, tuple[bool, float, dict[str, Any]]] = {}

    def run_input(self, wf: Workflow, value: Mapping[str, Any]) -> str | None:
        """Refuse a run input that does not fit the workflow's contract (SpecError, exit 2).

        Returns what could not be checked, if anything (see ``contracts.warn_unchecked``).
        """
        if wf.input is not None:
            from orchestrator.inputs import check_input  # noqa: PLC0415

            check_input(wf.input, dict(value), workflow=wf.ref)
            return None
        from orchestrator import contracts  # noqa: PLC0415

        return contracts.check_input(wf, value, self.contracts(wf))

    def signal(self, wf: Workflow, step: str, data: Any) -> str | None:
        """Check signal data by the steps it feeds: their code if importable, else contracts."""
        unimported = _check_with_code(wf, step, data)
        if not unimported:
            return None
        from orchestrator import contracts  # noqa: PLC0415

        return contracts.check_signal(wf, step, data, unimported, self.contracts(wf))

    def contracts(self, wf: Workflow) -> dict[str, Any]:
        """The stored step contracts of a version.

        Kept once every task step has one (contracts never change for a content
        hash); an incomplete set is read again after ``CONTRACT_RECHECK`` seconds.
        """
        key = f"{wf.ref}@{wf.content_hash}"
        complete, read_at, found = self._known.get(key, (False, -1e9, {}))
        if not complete and time.monotonic() - read_at > CONTRACT_RECHECK:
            from orchestrator.contracts import ContractStore  # noqa: PLC0415

            with reachable(self.url):
                found = ContractStore(self.redis, self.keys).load(wf)
            complete = all(n in found for n, s in wf.steps.items() if s.task is not None)
            self._known[key] = (complete, time.monotonic(), found)
        return found


def _check_with_code(wf: Workflow, step: str, data: Any) -> list[str]:
    """Refuse signal data a downstream step's annotation would refuse, where importable.

    Returns the downstream steps whose code could not be imported here.
    """
    from orchestrator.steps import StepFunction, import_task  # noqa: PLC0415

    unimported = []
    for name, spec in wf.steps.items():
        if step not in spec.upstreams or spec.task is None:
            continue
        try:
            fn = StepFunction.wrap(import_task(spec.task))
        except SpecError:
            unimported.append(name)  # checked against its stored contract, if any
            continue
        try:
            fn.bind(name, {step: data}, {}, None, only=step)
        except HandoffError as exc:
            raise SpecError(f"signal data does not fit: {exc}", where=f"step {step!r}") from None
    return unimported


P = ParamSpec("P")
R = TypeVar("R")


def redis_call(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """Report a Redis that stops answering mid-call as ``RedisUnavailableError`` (exit 3).

    Every read and write is bounded by ``ORCH_CONNECT_TIMEOUT`` (see
    ``connection``), so a frozen Redis ends a call within that bound, with the
    same error whichever call it hit.
    """

    @functools.wraps(method)
    def call(owner: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        url = owner.url  # a Client, or a part of one (``reports.Reports``)
        with reachable(url):
            return method(owner, *args, **kwargs)

    return call
