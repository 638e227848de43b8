"""The six figures, computed from a window's counts (pure: no Redis).

Definitions, exactly (the README repeats them):
- **success rate** = runs that ended SUCCEEDED ÷ runs that ended (any terminal state);
- **retry burden** = attempts that were retries ÷ first attempts, and the seconds spent in
  failed attempts (retried or final);
- **queue delay** = from the moment an attempt became runnable (queued, made ready by its
  join, or due after a backoff) to the moment it started, per queue, as p50/p95/p99 read
  from the fixed-bucket histogram (``histogram``);
- **handoff accuracy** = valid handoffs ÷ all handoffs, per edge and overall. Every
  recorded attempt of a step hands off each of its inputs once; a handoff is invalid when
  the attempt failed validating that edge (``HandoffError``);
- **compensation rate** = runs during which a compensation ran ÷ runs that ended, and the
  number of compensations that failed for good;
- **branch coverage** = plan edges some run ending in the window took ÷ the plan's edges
  (none when no run ended, or the plan has no edges).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.scorecard import histogram
from orchestrator.scorecard.model import EdgeScore, Figures, QueueDelay


@dataclass(frozen=True)
class Shape:
    """What the figures need of a version's plan."""

    edges: tuple[tuple[str, str], ...]
    queues: Mapping[str, str]


def arrow(up: str, step: str) -> str:
    """An edge as handoff errors name it (steps.bind)."""
    return f"{up} → {step}"


@dataclass
class _Tally:
    ended: dict[str, float]
    compensated: float
    masks: set[str]
    first: float
    retries: float
    failed_seconds: float
    attempts: dict[str, float]
    delays: dict[str, dict[int, int]]
    bad: dict[str, float]
    undone: float
    undo_failed: float


def _tally(counts: Mapping[str, float], shape: Shape) -> _Tally:
    t = _Tally(defaultdict(float), 0, set(), 0, 0, 0, defaultdict(float), {}, {}, 0, 0)
    for field, value in counts.items():
        kind, _, rest = field.partition(":")
        if kind in ("ok", "fail"):
            step, qb, which = rest.rsplit(":", 2)
            t.attempts[step] += value
            if which == "f":
                t.first += value
            else:
                t.retries += value
            queue = shape.queues.get(step, "?")
            per = t.delays.setdefault(queue, defaultdict(int))
            per[int(qb)] += int(value)
        elif kind == "failsec":
            t.failed_seconds += value
        elif kind == "bad":
            t.bad[rest] = t.bad.get(rest, 0) + value
        elif kind == "end":
            state, compensated, mask = rest.split(":", 2)
            t.ended[state] += value
            t.compensated += value if compensated == "1" else 0
            if value > 0:
                t.masks.add(mask)
        elif field == "undo:ok":
            t.undone += value
        elif field == "undo:fail":
            t.undo_failed += value
    return t


def _taken(masks: set[str], edges: int) -> int:
    bits = 0
    for mask in masks:
        for k, nibble in enumerate(mask):
            bits |= int(nibble, 16) << (4 * k)
    return sum(1 for k in range(edges) if bits >> k & 1)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def figures(counts: Mapping[str, float], shape: Shape) -> Figures:
    t = _tally(counts, shape)
    runs = sum(t.ended.values())
    handoffs = _handoffs(t, shape)
    valid = sum(e.valid for e in handoffs)
    total = sum(e.total for e in handoffs)
    taken = _taken(t.masks, len(shape.edges))
    return Figures(
        runs=int(runs),
        ended={k: int(v) for k, v in sorted(t.ended.items())},
        success_rate=_ratio(t.ended.get("SUCCEEDED", 0), runs),
        first_attempts=int(t.first),
        retries=int(t.retries),
        retry_burden=_ratio(t.retries, t.first),
        failed_seconds=round(t.failed_seconds, 6),
        queue_delay=[_delay(q, h) for q, h in sorted(t.delays.items())],
        handoffs=handoffs,
        handoff_accuracy=_ratio(valid, total),
        compensated=int(t.compensated),
        compensation_rate=_ratio(t.compensated, runs),
        compensations_failed=int(t.undo_failed),
        edges=len(shape.edges),
        edges_taken=taken,
        coverage=_ratio(taken, len(shape.edges)) if shape.edges and runs else None,
    )


def _delay(queue: str, counts: Mapping[int, int]) -> QueueDelay:
    return QueueDelay(
        queue=queue,
        attempts=sum(counts.values()),
        p50=histogram.percentile(counts, 0.50),
        p95=histogram.percentile(counts, 0.95),
        p99=histogram.percentile(counts, 0.99),
    )


def _handoffs(t: _Tally, shape: Shape) -> list[EdgeScore]:
    names = {arrow(u, s): s for u, s in shape.edges}
    for edge in t.bad:
        names.setdefault(edge, edge.rpartition(" → ")[2])
    out = []
    for edge, step in sorted(names.items()):
        total = int(t.attempts.get(step, 0))
        bad = int(t.bad.get(edge, 0))
        if total == 0 and bad == 0:
            continue
        total = max(total, bad)
        out.append(
            EdgeScore(
                edge=edge, valid=total - bad, total=total, accuracy=_ratio(total - bad, total)
            )
        )
    return out


def sum_counts(buckets: Sequence[Mapping[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bucket in buckets:
        for field, value in bucket.items():
            total[field] = total.get(field, 0.0) + value
    return total
