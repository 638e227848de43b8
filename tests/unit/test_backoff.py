"""Retry delays and error classification: pure functions, checked as properties."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import HandoffError, NonRetryableError
from orchestrator.resilience import backoff_delay, is_retryable
from orchestrator.spec import RetryPolicy
from tests.unit.dags import PROPERTY

seconds = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def policies(draw: st.DrawFn, jitter: str | None = None) -> RetryPolicy:
    initial = draw(seconds)
    cap = draw(st.floats(min_value=initial, max_value=max(initial, 1e5) * 2))
    return RetryPolicy(
        initial=initial,
        max=cap,
        multiplier=draw(st.floats(min_value=1.0, max_value=10.0)),
        jitter=jitter or draw(st.sampled_from(["full", "equal", "none"])),
        max_attempts=draw(st.integers(1, 100)),
    )


attempts = st.integers(min_value=1, max_value=100)
unit_draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def capped(policy: RetryPolicy, attempt: int) -> float:
    """min(max, initial * multiplier ** (attempt - 1)), computed without overflow."""
    if policy.initial == 0:
        return 0.0
    log_base = math.log(policy.initial) + (attempt - 1) * math.log(policy.multiplier)
    if log_base >= math.log(policy.max):  # initial > 0 here, so max > 0 too
        return policy.max
    return min(policy.max, policy.initial * policy.multiplier ** (attempt - 1))


@PROPERTY
@given(policies(), attempts, unit_draws)
def test_delay_is_never_negative_nor_above_the_cap(
    policy: RetryPolicy, attempt: int, u: float
) -> None:
    delay = backoff_delay(policy, attempt, lambda: u)
    assert 0 <= delay <= policy.max


@PROPERTY
@given(policies(jitter="none"), attempts)
def test_no_jitter_is_the_capped_exponential(policy: RetryPolicy, attempt: int) -> None:
    expected = min(policy.max, policy.initial * policy.multiplier ** (attempt - 1))
    assert backoff_delay(policy, attempt) == pytest.approx(expected, rel=1e-12, abs=0)
    assert backoff_delay(policy, attempt) == pytest.approx(capped(policy, attempt), rel=1e-9)


@PROPERTY
@given(policies(jitter="none"), st.integers(1, 99))
def test_no_jitter_never_shrinks(policy: RetryPolicy, attempt: int) -> None:
    assert backoff_delay(policy, attempt + 1) >= backoff_delay(policy, attempt)


@PROPERTY
@given(policies(jitter="equal"), attempts, unit_draws)
def test_equal_jitter_is_in_the_upper_half(policy: RetryPolicy, attempt: int, u: float) -> None:
    top = capped(policy, attempt)
    delay = backoff_delay(policy, attempt, lambda: u)
    assert top / 2 * (1 - 1e-12) <= delay <= top * (1 + 1e-12)


@PROPERTY
@given(policies(jitter="full"), attempts, unit_draws)
def test_full_jitter_scales_the_draw(policy: RetryPolicy, attempt: int, u: float) -> None:
    top = capped(policy, attempt)
    delay = backoff_delay(policy, attempt, lambda: u)
    assert delay == pytest.approx(top * u, rel=1e-9, abs=1e-300)
    assert backoff_delay(policy, attempt, lambda: 0.0) == 0.0


@PROPERTY
@given(
    st.floats(0.01, 100),
    st.floats(1.0, 10.0),
    st.integers(1, 100),
    st.integers(0, 2**32),
)
def test_full_jitter_mean_is_half_the_cap(
    initial: float, multiplier: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(initial=initial, max=initial * 50, multiplier=multiplier, jitter="full")
    top = capped(policy, attempt)
    rng = random.Random(seed)
    draws = [backoff_delay(policy, attempt, rng.random) for _ in range(2000)]
    assert all(0 <= d <= top for d in draws)
    mean = sum(draws) / len(draws)
    # The standard error of the mean is top / sqrt(12 * 2000) ≈ 0.0065 * top.
    assert abs(mean - top / 2) <= 0.05 * top
    assert min(draws) < 0.1 * top
    assert max(draws) > 0.9 * top


def test_default_random_source_stays_in_bounds() -> None:
    policy = RetryPolicy(initial=1, max=8, jitter="full")
    draws = [backoff_delay(policy, 4) for _ in range(500)]
    assert all(0 <= d <= 8 for d in draws)
    assert len(set(draws)) > 1, "full jitter with the default source is random"


@PROPERTY
@given(policies(), st.integers(min_value=101, max_value=10**18), unit_draws)
def test_huge_attempts_do_not_overflow(policy: RetryPolicy, attempt: int, u: float) -> None:
    delay = backoff_delay(policy, attempt, lambda: u)
    assert math.isfinite(delay)
    assert 0 <= delay <= policy.max
    if policy.jitter == "none" and policy.initial > 0:
        assert delay == pytest.approx(capped(policy, attempt), rel=1e-9)


@pytest.mark.parametrize("attempt", [0, -1, -(10**9)])
def test_attempts_below_one_use_the_initial_delay(attempt: int) -> None:
    policy = RetryPolicy(initial=2, max=30, jitter="none")
    assert backoff_delay(policy, attempt) == 2.0


def test_worked_examples() -> None:
    policy = RetryPolicy(initial="500ms", max="10s", multiplier=2, jitter="none")
    assert [backoff_delay(policy, a) for a in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    equal = RetryPolicy(initial=1, max=60, jitter="equal")
    assert backoff_delay(equal, 3, lambda: 0.0) == 2.0
    assert backoff_delay(equal, 3, lambda: 0.5) == 3.0


# --- classification ----------------------------------------------------------


class ProviderDown(ConnectionError):
    pass


class Throttled(ProviderDown):
    pass


class StepBug(ValueError):
    pass


def policy(**kwargs: tuple[str, ...]) -> RetryPolicy:
    return RetryPolicy(**kwargs)


QUALIFIED = f"{__name__}.ProviderDown"


@pytest.mark.parametrize(
    "exc",
    [
        NonRetryableError("no"),
        HandoffError("handoff a → b: bad", edge="a → b"),
    ],
)
@pytest.mark.parametrize(
    "retry_on",
    [(), ("NonRetryableError",), ("Exception",), ("HandoffError", "OrchestratorError")],
)
def test_non_retryable_error_is_never_retried(exc: Exception, retry_on: tuple[str, ...]) -> None:
    assert not is_retryable(exc, policy(retry_on=retry_on))


def test_everything_else_retries_by_default() -> None:
    for exc in (ValueError(), TimeoutError(), ProviderDown(), KeyError("k"), Exception()):
        assert is_retryable(exc, RetryPolicy())


@pytest.mark.parametrize(
    "name", ["ProviderDown", QUALIFIED, "ConnectionError", "builtins.ConnectionError", "OSError"]
)
def test_non_retryable_by_bare_or_qualified_name_along_the_mro(name: str) -> None:
    p = policy(non_retryable=(name,))
    assert not is_retryable(ProviderDown(), p)
    assert not is_retryable(Throttled(), p), "a subclass of a named type matches"
    assert is_retryable(StepBug(), p)


def test_non_retryable_names_match_whole_names_only() -> None:
    p = policy(non_retryable=("Provider", "tests.unit.ProviderDown", "providerdown"))
    assert is_retryable(ProviderDown(), p)


def test_retry_on_restricts() -> None:
    p = policy(retry_on=("TimeoutError", QUALIFIED))
    assert is_retryable(TimeoutError(), p)
    assert is_retryable(ProviderDown(), p)
    assert is_retryable(Throttled(), p)
    assert not is_retryable(StepBug(), p)
    assert not is_retryable(ConnectionError(), p), "a base class of a named type does not match"


def test_non_retryable_wins_over_retry_on() -> None:
    p = policy(retry_on=("ConnectionError",), non_retryable=("Throttled",))
    assert is_retryable(ProviderDown(), p)
    assert not is_retryable(Throttled(), p)


names = st.sampled_from(
    ["ProviderDown", "Throttled", "StepBug", "ValueError", "OSError", "Exception", QUALIFIED]
)


@PROPERTY
@given(
    st.lists(names, max_size=3, unique=True),
    st.lists(names, max_size=3, unique=True),
    st.sampled_from([ProviderDown, Throttled, StepBug, ValueError, TimeoutError]),
)
def test_classification_rule(
    retry_on: list[str], non_retryable: list[str], exc_type: type[Exception]
) -> None:
    mro_names = {c.__name__ for c in exc_type.__mro__} | {
        f"{c.__module__}.{c.__qualname__}" for c in exc_type.__mro__
    }
    p = policy(retry_on=tuple(retry_on), non_retryable=tuple(non_retryable))
    expected = not (mro_names & set(non_retryable)) and (
        not retry_on or bool(mro_names & set(retry_on))
    )
    assert is_retryable(exc_type(), p) == expected
