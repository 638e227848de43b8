"""One retry decision for every failure path: is this failure retried, and after how long.

A step that raised, a step that hit its time limit, an attempt whose lease ran
out, a compensation that raised or went silent: all of them ask
:func:`decide_retry`, so the rule (classification, the attempt bound, the
backoff) is written once and tested as a property. The engine may still veto
a retry it cannot afford or can no longer run (:func:`apply_veto`); the
message recorded for each failure is :func:`describe_failure`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from orchestrator.errors import HandoffError, StepCancelled
from orchestrator.resilience.backoff import backoff_delay
from orchestrator.resilience.classify import is_retryable

if TYPE_CHECKING:
    from orchestrator.spec import RetryPolicy

#: The type name of Celery's soft time limit (billiard's SoftTimeLimitExceeded),
#: matched by name so that this module does not import Celery.
SOFT_TIME_LIMIT = "SoftTimeLimitExceeded"


class FailureKind(StrEnum):
    ERROR = "error"  # the step raised
    TIMEOUT = "timeout"  # its per-attempt time limit (Celery's soft limit) fired
    LOST = "lost"  # its lease ran out: worker killed, out of memory, hard time limit
    COMPENSATION = "compensation"  # a compensation raised
    COMPENSATION_LOST = "compensation_lost"  # a compensation's lease ran out


#: Kinds whose exception is classified against the policy; a lost attempt has none.
RAISED = frozenset({FailureKind.ERROR, FailureKind.TIMEOUT, FailureKind.COMPENSATION})

#: Kinds after which a step's fallback may answer: never for a lost lease (the
#: sweeper runs no user code) nor for a compensation (it has no fallback).
FALLBACK_KINDS = frozenset({FailureKind.ERROR, FailureKind.TIMEOUT})


class GiveUpReason(StrEnum):
    NON_RETRYABLE = "non_retryable"  # NonRetryableError, or a type policy.non_retryable names
    NOT_LISTED = "not_listed"  # policy.retry_on does not name it
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    BUDGET_SPENT = "budget_spent"  # the engine's veto: the dependency's retry budget is spent
    RUN_STOPPED = "run_stopped"  # the engine's veto: the run is no longer RUNNING


class Veto(StrEnum):
    """Why the engine refused a retry that the policy allowed."""

    BUDGET = "budget"
    RUN_STOPPED = "run_stopped"


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the retry decision needs it.

    ``attempt`` is the 1-based number of the attempt that failed. ``exception``
    is what was raised: required for the kinds that raise, None for the lost ones.
    """

    kind: FailureKind
    attempt: int
    exception: BaseException | None
    has_fallback: bool = False

    def __post_init__(self) -> None:
        if self.kind in RAISED and self.exception is None:
            raise ValueError(f"a {self.kind} failure needs the exception that was raised")

    @classmethod
    def of_step(cls, exc: BaseException, attempt: int, *, has_fallback: bool = False) -> Failure:
        """A step's failure: a timeout when Celery's soft time limit fired, else an error."""
        timed_out = type(exc).__name__ == SOFT_TIME_LIMIT
        kind = FailureKind.TIMEOUT if timed_out else FailureKind.ERROR
        return cls(kind, attempt, exc, has_fallback)


@dataclass(frozen=True)
class Retry:
    """Retry after ``delay`` seconds; ``reason`` is the failure kind that caused it."""

    delay: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """The failure is final; ``fallback`` says the step's fallback should answer instead."""

    reason: GiveUpReason
    fallback: bool


def decide_retry(
    policy: RetryPolicy, failure: Failure, rand: Callable[[], float] = random.random
) -> Retry | GiveUp:
    """Whether ``failure`` is retried under ``policy``, and after how long.

    ``rand`` is drawn from only when the answer is a retry, so a caller with a
    seeded source gets the same delays whatever failures came before.
    """
    exc = failure.exception
    if failure.kind in RAISED and exc is not None and not is_retryable(exc, policy):
        return GiveUp(_refusal(exc, policy), may_fall_back(failure))
    if failure.attempt >= policy.max_attempts:
        return GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED, may_fall_back(failure))
    return Retry(backoff_delay(policy, failure.attempt, rand), str(failure.kind))


def apply_veto(retry: Retry, veto: Veto | None, failure: Failure) -> Retry | GiveUp:
    """The final decision once the engine has had its say on a retry.

    A spent budget still lets the step's fallback answer (when it has one and
    the failure may use one); a stopped run starts nothing new, fallback included.
    """
    if veto is None:
        return retry
    if veto is Veto.BUDGET:
        return GiveUp(GiveUpReason.BUDGET_SPENT, may_fall_back(failure))
    return GiveUp(GiveUpReason.RUN_STOPPED, False)


def may_fall_back(failure: Failure) -> bool:
    """Whether a final ``failure`` hands the step to its fallback.

    A broken handoff or a cancelled step would break the fallback the same
    way (or must not go on at all), so neither falls back.
    """
    if not failure.has_fallback or failure.kind not in FALLBACK_KINDS:
        return False
    return not isinstance(failure.exception, (HandoffError, StepCancelled))


def describe_failure(policy: RetryPolicy, failure: Failure, *, lease: float | None = None) -> str:
    """The error message to record for ``failure``.

    ``lease`` (the lease length in seconds) is required for a lost step attempt,
    whose message says how long it went silent.
    """
    n = failure.attempt
    if failure.kind is FailureKind.TIMEOUT:
        if policy.timeout is None:  # a limit the worker imposed, not the step's policy
            return f"attempt {n} exceeded its time limit"
        return f"attempt {n} exceeded its {policy.timeout:g}s timeout"
    if failure.kind is FailureKind.LOST:
        if lease is None:
            raise ValueError("describing a lost attempt needs the lease length")
        return (
            f"attempt {n} went silent for {lease:g}s: its worker was killed, ran out of "
            "memory or hit its hard time limit"
        )
    if failure.kind is FailureKind.COMPENSATION_LOST:
        return f"compensation attempt {n} went silent: its worker was lost"
    return str(failure.exception)


def _refusal(exc: BaseException, policy: RetryPolicy) -> GiveUpReason:
    """Why a non-retryable exception is not retried: refused outright, or not listed."""
    if policy.retry_on and is_retryable(exc, policy.model_copy(update={"retry_on": ()})):
        return GiveUpReason.NOT_LISTED
    return GiveUpReason.NON_RETRYABLE
