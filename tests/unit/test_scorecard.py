"""The scorecard's pure parts: the histogram's error bound and the figures' definitions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.scorecard import histogram as h
from orchestrator.scorecard.figures import Shape, figures
from orchestrator.scorecard.report import check_by, default_by, window_seconds
from tests.unit.dags import PROPERTY

#: Delays the histogram resolves: above its first bound, below its last one.
RESOLVED = st.floats(min_value=h.FIRST * 1.0001, max_value=h.bounds(h.BUCKETS - 2)[1])


@PROPERTY
@given(st.lists(RESOLVED, min_size=1, max_size=300), st.sampled_from([0.5, 0.95, 0.99]))
def test_a_percentile_is_within_one_bucket_of_the_truth(delays: list[float], q: float) -> None:
    counts: dict[int, int] = {}
    for d in delays:
        counts[h.bucket_of(d)] = counts.get(h.bucket_of(d), 0) + 1
    truth = sorted(delays)[math.ceil(q * len(delays)) - 1]
    estimate = h.percentile(counts, q)
    assert estimate is not None
    assert 1 / math.sqrt(h.GROWTH) - 1e-9 <= estimate / truth <= math.sqrt(h.GROWTH) + 1e-9


@PROPERTY
@given(st.floats(min_value=0, max_value=1e7))
def test_every_delay_falls_in_its_bucket(delay: float) -> None:
    lo, hi = h.bounds(h.bucket_of(delay))
    assert lo <= delay <= hi or (delay == 0 and lo == 0)


def test_an_empty_histogram_has_no_percentile() -> None:
    assert h.percentile({}, 0.5) is None


SHAPE = Shape(edges=(("a", "b"), ("a", "c"), ("b", "d")), queues={"a": "q", "b": "q", "c": "w"})


def test_figures_follow_their_definitions() -> None:
    counts = {
        "ok:a:5:f": 3,
        "ok:a:7:r": 1,
        "fail:a:9:f": 1,
        "ok:b:2:f": 2,
        "fail:c:1:f": 2,
        "bad:a → c": 1,
        "failsec:a": 0.5,
        "end:SUCCEEDED:0:3": 2,  # edges 0 and 1 taken
        "end:COMPENSATED:1:1": 1,
        "end:FAILED:0:1": 1,
        "undo:ok": 1,
        "undo:fail": 1,
    }
    f = figures(counts, SHAPE)
    assert (f.runs, f.success_rate) == (4, 0.5)
    assert (f.first_attempts, f.retries, f.retry_burden, f.failed_seconds) == (8, 1, 0.125, 0.5)
    assert [(q.queue, q.attempts) for q in f.queue_delay] == [("q", 7), ("w", 2)]
    assert [(e.edge, e.valid, e.total) for e in f.handoffs] == [
        ("a → b", 2, 2),
        ("a → c", 1, 2),
    ]
    assert f.handoff_accuracy == 0.75
    assert (f.compensated, f.compensation_rate, f.compensations_failed) == (1, 0.25, 1)
    assert (f.edges, f.edges_taken, f.coverage) == (3, 2, 0.666667)


def test_no_counts_no_figures() -> None:
    f = figures({}, SHAPE)
    assert (f.runs, f.success_rate, f.retry_burden, f.handoff_accuracy) == (0, None, None, None)
    assert (f.coverage, f.queue_delay, f.handoffs) == (None, [], [])


def test_windows_and_buckets() -> None:
    assert [window_seconds(w) for w in ("1h", "24h", "7d", "30d", "90m")] == [
        3600, 86400, 604800, 2592000, 5400,
    ]  # fmt: skip
    assert [default_by(window_seconds(w)) for w in ("1h", "24h", "7d")] == ["minute", "hour", "day"]
    for bad in ("0h", "31d", "soon", "1y"):
        with pytest.raises(SpecError, match="--window"):
            window_seconds(bad)
    with pytest.raises(SpecError, match="minutes are kept 6 hours"):
        check_by("minute", window_seconds("24h"))
    with pytest.raises(SpecError, match="does not fit"):
        check_by("day", window_seconds("1h"))
