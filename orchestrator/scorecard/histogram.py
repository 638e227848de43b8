"""The queue-delay histogram: fixed, log-spaced buckets shared by Lua and Python.

Bucket 0 holds delays up to ``FIRST`` (1 ms); bucket k ≥ 1 holds delays in
(FIRST·G^(k-1), FIRST·G^k] with G = √2, up to the last bucket, which holds
everything above. Fixed buckets make histograms from any worker, minute or
version add up by plain addition, and a percentile read from them is off by
at most the bucket's width: estimating within (lo, hi] by the geometric mean
√(lo·hi) is within a factor √G (about 19 %) of the true delay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

FIRST = 0.001
GROWTH = math.sqrt(2.0)
BUCKETS = 48  # the last bound is about 11.6 minutes; above it, one open bucket


def bucket_of(delay: float) -> int:
    """The bucket of a delay in seconds (the Lua's ``qd_bucket`` computes the same)."""
    if delay <= FIRST:
        return 0
    k = math.ceil(math.log(delay / FIRST) / math.log(GROWTH) - 1e-9)
    return min(max(k, 1), BUCKETS - 1)


def bounds(k: int) -> tuple[float, float]:
    """(lower, upper] of bucket k in seconds; the last bucket's upper bound is infinite."""
    if k == 0:
        return 0.0, FIRST
    upper = math.inf if k == BUCKETS - 1 else FIRST * GROWTH**k
    return FIRST * GROWTH ** (k - 1), upper


def estimate(k: int) -> float:
    """The value a percentile in bucket k is reported as: the bucket's geometric middle."""
    lo, hi = bounds(k)
    if k == 0:
        return FIRST / 2
    if math.isinf(hi):
        return lo
    return math.sqrt(lo * hi)


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) of a histogram {bucket: count}; None when it is empty."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for k in sorted(counts):
        seen += counts[k]
        if seen >= rank:
            return estimate(k)
    return estimate(max(counts))


def lua_bucket() -> str:
    """``qd_bucket(delay)`` in Lua, from the same constants."""
    return (
        "local function qd_bucket(d)\n"
        f"  if d <= {FIRST!r} then return 0 end\n"
        f"  local k = math.ceil(math.log(d / {FIRST!r}) / math.log({GROWTH!r}) - 1e-9)\n"
        f"  if k < 1 then return 1 end\n"
        f"  if k > {BUCKETS - 1} then return {BUCKETS - 1} end\n"
        "  return k\n"
        "end\n"
    )
