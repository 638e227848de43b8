"""Retry delays: capped exponential backoff with jitter, as one pure function.

Full jitter (a uniform draw from zero to the capped exponential) spreads a
burst of failures evenly over the window, which is what keeps a fleet of
workers from retrying a recovering provider in lock-step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.spec import RetryPolicy


def backoff_delay(
    policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    exponent = max(0, attempt - 1)
    try:
        base = policy.initial * policy.multiplier**exponent
    except OverflowError:
        base = policy.max
    capped = min(policy.max, base)
    if policy.jitter == "full":
        return capped * rand()
    if policy.jitter == "equal":
        return capped / 2 + capped / 2 * rand()
    return capped
