"""The one retry decision: checked as properties over arbitrary policies, failures and draws."""

from __future__ import annotations

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import (
    CircuitOpenError,
    HandoffError,
    NonRetryableError,
    PayloadTooLargeError,
    StepCancelled,
)
from orchestrator.resilience import (
    Failure,
    FailureKind,
    GiveUp,
    GiveUpReason,
    Retry,
    Veto,
    apply_veto,
    backoff_delay,
    decide_retry,
    describe_failure,
    may_fall_back,
)
from orchestrator.spec import RetryPolicy
from tests.unit.dags import PROPERTY


class ProviderDown(ConnectionError):
    pass


class Throttled(ProviderDown):
    pass


class StepBug(ValueError):
    pass


QUALIFIED = f"{__name__}.ProviderDown"
NAMES = ["ProviderDown", "Throttled", "StepBug", "ValueError", "OSError", "Exception", QUALIFIED]
NAMES += ["SoftTimeLimitExceeded", "NonRetryableError", "HandoffError"]

ORDINARY = [ProviderDown, Throttled, StepBug, ValueError, TimeoutError, KeyError]
REFUSED = [NonRetryableError, StepCancelled, PayloadTooLargeError, CircuitOpenError]


def make(exc_type: type[BaseException]) -> BaseException:
    if exc_type is HandoffError:
        return HandoffError("handoff a → b: bad", edge="a → b")
    return exc_type("failed")


exceptions = st.sampled_from([*ORDINARY, *REFUSED, HandoffError, SoftTimeLimitExceeded]).map(make)
seconds = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)
unit_draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
LOST_KINDS = [FailureKind.LOST, FailureKind.COMPENSATION_LOST]
RAISED_KINDS = [FailureKind.ERROR, FailureKind.TIMEOUT, FailureKind.COMPENSATION]


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    initial = draw(seconds)
    return RetryPolicy(
        initial=initial,
        max=draw(st.floats(min_value=initial, max_value=max(initial, 1e5) * 2)),
        multiplier=draw(st.floats(min_value=1.0, max_value=10.0)),
        jitter=draw(st.sampled_from(["full", "equal", "none"])),
        max_attempts=draw(st.integers(1, 100)),
        retry_on=tuple(draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))),
        non_retryable=tuple(draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))),
        timeout=draw(st.none() | st.floats(min_value=0.1, max_value=1e4)),
    )


@st.composite
def failures(draw: st.DrawFn, kinds: list[FailureKind] | None = None) -> Failure:
    kind = draw(st.sampled_from(kinds or list(FailureKind)))
    exc = draw(exceptions) if kind not in LOST_KINDS else None
    return Failure(kind, draw(st.integers(1, 120)), exc, draw(st.booleans()))


def mro_names(exc: BaseException) -> set[str]:
    mro = type(exc).__mro__
    return {c.__name__ for c in mro} | {f"{c.__module__}.{c.__qualname__}" for c in mro}


def expected_fallback(failure: Failure) -> bool:
    """The rule of today's runtime, written out independently of the product."""
    steps_own = failure.kind in (FailureKind.ERROR, FailureKind.TIMEOUT)
    broken = isinstance(failure.exception, (HandoffError, StepCancelled))
    return failure.has_fallback and steps_own and not broken


# --- properties ----------------------------------------------------------------


@PROPERTY
@given(policies(), failures(), unit_draws)
def test_never_a_retry_once_attempts_are_spent(
    policy: RetryPolicy, failure: Failure, u: float
) -> None:
    decision = decide_retry(policy, failure, lambda: u)
    if failure.attempt >= policy.max_attempts:
        assert isinstance(decision, GiveUp)


@PROPERTY
@given(policies(), failures(), unit_draws)
def test_a_retry_waits_the_backoff_for_the_same_draw(
    policy: RetryPolicy, failure: Failure, u: float
) -> None:
    decision = decide_retry(policy, failure, lambda: u)
    if isinstance(decision, Retry):
        assert 0 <= decision.delay <= policy.max
        assert decision.delay == backoff_delay(policy, failure.attempt, lambda: u)
        assert decision.reason == failure.kind
        assert failure.attempt < policy.max_attempts


@PROPERTY
@given(policies(), failures(), unit_draws)
def test_the_decision_follows_the_classification_rule(
    policy: RetryPolicy, failure: Failure, u: float
) -> None:
    """An oracle over names along the MRO, as the spec documents them."""
    decision = decide_retry(policy, failure, lambda: u)
    exc = failure.exception
    if exc is None:
        reason = None
    elif isinstance(exc, NonRetryableError) or mro_names(exc) & set(policy.non_retryable):
        reason = GiveUpReason.NON_RETRYABLE
    elif policy.retry_on and not mro_names(exc) & set(policy.retry_on):
        reason = GiveUpReason.NOT_LISTED
    else:
        reason = None
    if reason is None and failure.attempt >= policy.max_attempts:
        reason = GiveUpReason.ATTEMPTS_EXHAUSTED
    if reason is None:
        assert isinstance(decision, Retry)
    else:
        assert decision == GiveUp(reason, expected_fallback(failure))


@PROPERTY
@given(policies(), failures(RAISED_KINDS), st.sampled_from([*REFUSED, HandoffError]))
def test_non_retryable_errors_are_never_retried(
    policy: RetryPolicy, failure: Failure, exc_type: type[NonRetryableError]
) -> None:
    failure = Failure(failure.kind, failure.attempt, make(exc_type), failure.has_fallback)
    decision = decide_retry(policy, failure)
    assert isinstance(decision, GiveUp)
    assert decision.reason is GiveUpReason.NON_RETRYABLE


@PROPERTY
@given(policies(), failures(RAISED_KINDS), st.sampled_from(ORDINARY))
def test_types_the_policy_refuses_are_never_retried(
    policy: RetryPolicy, failure: Failure, exc_type: type[Exception]
) -> None:
    exc = make(exc_type)
    refused = policy.model_copy(update={"non_retryable": (exc_type.__name__,)})
    decision = decide_retry(refused, Failure(failure.kind, failure.attempt, exc))
    assert decision == GiveUp(GiveUpReason.NON_RETRYABLE, False)


@PROPERTY
@given(policies(), failures(RAISED_KINDS), st.sampled_from(ORDINARY))
def test_retry_on_restricts(
    policy: RetryPolicy, failure: Failure, exc_type: type[Exception]
) -> None:
    exc = make(exc_type)
    unlisted = policy.model_copy(update={"retry_on": ("NoSuchError",), "non_retryable": ()})
    decision = decide_retry(unlisted, Failure(failure.kind, failure.attempt, exc))
    assert decision == GiveUp(GiveUpReason.NOT_LISTED, False)
    listed = unlisted.model_copy(update={"retry_on": ("NoSuchError", exc_type.__name__)})
    retried = decide_retry(listed, Failure(failure.kind, failure.attempt, exc))
    assert isinstance(retried, Retry) == (failure.attempt < policy.max_attempts)


@PROPERTY
@given(policies(), failures(LOST_KINDS), unit_draws)
def test_lost_attempts_retry_while_attempts_remain(
    policy: RetryPolicy, failure: Failure, u: float
) -> None:
    decision = decide_retry(policy, failure, lambda: u)
    if failure.attempt < policy.max_attempts:
        assert decision == Retry(backoff_delay(policy, failure.attempt, lambda: u), failure.kind)
    else:
        assert decision == GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED, False)


@PROPERTY
@given(policies(), failures())
def test_fallback_flags(policy: RetryPolicy, failure: Failure) -> None:
    decision = decide_retry(policy, failure)
    assert may_fall_back(failure) == expected_fallback(failure)
    if isinstance(decision, GiveUp):
        assert decision.fallback == expected_fallback(failure)
    if not failure.has_fallback or failure.kind not in (FailureKind.ERROR, FailureKind.TIMEOUT):
        assert not may_fall_back(failure)


@PROPERTY
@given(policies(), failures())
def test_the_draw_is_taken_only_for_a_retry(policy: RetryPolicy, failure: Failure) -> None:
    draws: list[float] = []

    def rand() -> float:
        draws.append(0.5)
        return 0.5

    decision = decide_retry(policy, failure, rand)
    jittered = policy.jitter != "none"
    assert len(draws) == (1 if isinstance(decision, Retry) and jittered else 0)


@PROPERTY
@given(policies(), failures(), unit_draws)
def test_vetoes(policy: RetryPolicy, failure: Failure, u: float) -> None:
    retry = Retry(backoff_delay(policy, failure.attempt, lambda: u), failure.kind)
    assert apply_veto(retry, None, failure) is retry
    assert apply_veto(retry, Veto.BUDGET, failure) == GiveUp(
        GiveUpReason.BUDGET_SPENT, expected_fallback(failure)
    )
    assert apply_veto(retry, Veto.RUN_STOPPED, failure) == GiveUp(GiveUpReason.RUN_STOPPED, False)


# --- examples: today's runtime, case by case -------------------------------------


POLICY = RetryPolicy(max_attempts=3, initial=1, max=10, jitter="none", timeout=2.5)


def test_a_flaky_step_retries_then_gives_up_for_its_fallback() -> None:
    exc = ProviderDown("503")
    first = decide_retry(POLICY, Failure.of_step(exc, 1, has_fallback=True))
    second = decide_retry(POLICY, Failure.of_step(exc, 2, has_fallback=True))
    last = decide_retry(POLICY, Failure.of_step(exc, 3, has_fallback=True))
    assert first == Retry(1.0, "error")
    assert second == Retry(2.0, "error")
    assert last == GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED, fallback=True)


@pytest.mark.parametrize("exc", [HandoffError("bad", edge="a → b"), StepCancelled("cancelled")])
def test_a_broken_handoff_or_a_cancel_never_falls_back(exc: NonRetryableError) -> None:
    decision = decide_retry(POLICY, Failure.of_step(exc, 1, has_fallback=True))
    assert decision == GiveUp(GiveUpReason.NON_RETRYABLE, fallback=False)


def test_other_non_retryable_errors_fall_back_at_once() -> None:
    exc = PayloadTooLargeError("too big")
    decision = decide_retry(POLICY, Failure.of_step(exc, 1, has_fallback=True))
    assert decision == GiveUp(GiveUpReason.NON_RETRYABLE, fallback=True)


def test_a_soft_time_limit_is_a_timeout_and_retries_like_an_error() -> None:
    failure = Failure.of_step(SoftTimeLimitExceeded(), 1)
    assert failure.kind is FailureKind.TIMEOUT
    assert decide_retry(POLICY, failure) == Retry(1.0, "timeout")
    assert Failure.of_step(TimeoutError("read"), 1).kind is FailureKind.ERROR


def test_a_timeout_the_policy_refuses_is_not_retried() -> None:
    policy = POLICY.model_copy(update={"non_retryable": ("SoftTimeLimitExceeded",)})
    decision = decide_retry(policy, Failure.of_step(SoftTimeLimitExceeded(), 1, has_fallback=True))
    assert decision == GiveUp(GiveUpReason.NON_RETRYABLE, fallback=True)


def test_a_compensation_retries_with_the_steps_policy_and_never_falls_back() -> None:
    failure = Failure(FailureKind.COMPENSATION, 2, StepBug("undo"), has_fallback=True)
    assert decide_retry(POLICY, failure) == Retry(2.0, "compensation")
    final = Failure(FailureKind.COMPENSATION, 3, StepBug("undo"), has_fallback=True)
    assert decide_retry(POLICY, final) == GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED, fallback=False)


def test_a_lost_attempt_with_a_fallback_still_does_not_fall_back() -> None:
    lost = Failure(FailureKind.LOST, 3, None, has_fallback=True)
    assert decide_retry(POLICY, lost) == GiveUp(GiveUpReason.ATTEMPTS_EXHAUSTED, fallback=False)
    retry = decide_retry(POLICY, Failure(FailureKind.LOST, 1, None, has_fallback=True))
    assert isinstance(retry, Retry)
    assert apply_veto(retry, Veto.BUDGET, lost) == GiveUp(GiveUpReason.BUDGET_SPENT, False)


@pytest.mark.parametrize("kind", RAISED_KINDS)
def test_a_raised_failure_needs_its_exception(kind: FailureKind) -> None:
    with pytest.raises(ValueError, match=f"a {kind} failure needs the exception"):
        Failure(kind, 1, None)


# --- messages ---------------------------------------------------------------------


def test_an_error_is_described_by_the_exception() -> None:
    failure = Failure.of_step(StepBug("the model returned nonsense"), 2)
    assert describe_failure(POLICY, failure) == "the model returned nonsense"


def test_a_compensation_error_is_described_by_the_exception() -> None:
    failure = Failure(FailureKind.COMPENSATION, 1, KeyError("row"))
    assert describe_failure(POLICY, failure) == "'row'"


@pytest.mark.parametrize(("timeout", "text"), [(2.5, "2.5"), (30, "30"), (0.25, "0.25")])
def test_a_timeout_names_the_attempt_and_the_limit(timeout: float, text: str) -> None:
    policy = RetryPolicy(timeout=timeout)
    failure = Failure.of_step(SoftTimeLimitExceeded(), 2)
    assert describe_failure(policy, failure) == f"attempt 2 exceeded its {text}s timeout"


def test_a_timeout_without_a_policy_limit_still_says_what_happened() -> None:
    failure = Failure.of_step(SoftTimeLimitExceeded(), 1)
    assert describe_failure(RetryPolicy(), failure) == "attempt 1 exceeded its time limit"


@pytest.mark.parametrize(("lease", "text"), [(30.0, "30"), (0.5, "0.5"), (12.25, "12.25")])
def test_a_lost_attempt_says_how_long_it_went_silent(lease: float, text: str) -> None:
    failure = Failure(FailureKind.LOST, 3, None)
    assert describe_failure(POLICY, failure, lease=lease) == (
        f"attempt 3 went silent for {text}s: its worker was killed, ran out of memory or hit "
        "its hard time limit"
    )


def test_a_lost_attempt_needs_the_lease_to_be_described() -> None:
    with pytest.raises(ValueError, match="lease"):
        describe_failure(POLICY, Failure(FailureKind.LOST, 1, None))


def test_a_lost_compensation() -> None:
    failure = Failure(FailureKind.COMPENSATION_LOST, 2, None)
    message = "compensation attempt 2 went silent: its worker was lost"
    assert describe_failure(POLICY, failure) == message
    assert describe_failure(POLICY, failure, lease=30) == message
