"""``orch metrics``: the scorecard, one row per workflow version, with trends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli._app import app, console, print_json

if TYPE_CHECKING:
    from rich.table import Table

    from orchestrator.scorecard.model import Scorecard, VersionScore

SPARKS = "▁▂▃▄▅▆▇█"


WIDTH = 8


def squeeze(values: list[float | None], width: int = WIDTH) -> list[float | None]:
    """At most ``width`` points: neighbouring buckets averaged (those with data)."""
    size = max(1, -(-len(values) // width))
    out: list[float | None] = []
    for k in range(0, len(values), size):
        known = [v for v in values[k : k + size] if v is not None]
        out.append(sum(known) / len(known) if known else None)
    return out


def sparkline(values: list[float | None]) -> str:
    """One character per bucket (squeezed to a dozen); a bucket with no data is a space."""
    values = squeeze(values)
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    lo, hi = min(known), max(known)
    span = (hi - lo) or 1.0
    return "".join(
        " " if v is None else SPARKS[min(7, int((v - lo) / span * 7.999))] for v in values
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _change(now: float | None, before: float | None, *, percent: bool = True) -> str:
    if now is None or before is None:
        return ""
    delta = now - before
    if abs(delta) < 1e-9:
        return " (=)"
    return f" ({delta * 100:+.1f}pp)" if percent else f" ({delta:+.3g})"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


@app.command()
def metrics(
    workflow: Annotated[
        str | None, typer.Argument(help="A workflow name or name:version; default: all.")
    ] = None,
    window: Annotated[str, typer.Option("--window", help="1h, 24h, 7d or 30d.")] = "1h",
    by: Annotated[
        str | None, typer.Option("--by", help="Trend bucket: minute, hour or day.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The scorecard: success, retries, queue delay, handoffs, compensation, coverage."""
    from orchestrator.client import Client  # noqa: PLC0415 - keeps `orch --help` fast

    with Client() as client:
        card = client.metrics(workflow, window=window, by=by)
    if as_json:
        print_json(card.model_dump(mode="json"))
        return
    table = scorecard_table(card)
    if table is None:
        what = f"workflow {workflow!r}" if workflow else "no workflow"
        console.print(f"{what} has no runs in the last {card.window}")
        return
    console.print(table)


def scorecard_table(card: Scorecard) -> Table | None:
    """The scorecard as a table (also the demo's last one); None when nothing ran."""
    from rich.table import Table  # noqa: PLC0415 - only when printing

    shown = [v for v in card.versions if v.current.runs or v.current.first_attempts]
    if not shown:
        return None
    table = Table(title=f"Scorecard, last {card.window} by {card.by}", title_justify="left")
    for col in ("workflow", "runs", "success", "retry burden", "queue p95", "handoffs",
                "compensated", "coverage"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for v in shown:
        table.add_row(*_row(v))
    return table


def _row(v: VersionScore) -> list[str]:
    c, p, trend = v.current, v.previous, v.trend
    p95 = max((q.p95 or 0.0 for q in c.queue_delay), default=None)
    p95_before = max((q.p95 or 0.0 for q in p.queue_delay), default=None)
    return [
        f"{v.workflow} v{v.version}",
        f"{c.runs}\n{sparkline([float(t.runs) for t in trend])}",
        f"{_pct(c.success_rate)}{_change(c.success_rate, p.success_rate)}\n"
        f"{sparkline([t.success_rate for t in trend])}",
        f"{_ratio(c.retry_burden)}{_change(c.retry_burden, p.retry_burden, percent=False)}"
        f"\n{c.failed_seconds:.1f}s in failures\n{sparkline([t.retry_burden for t in trend])}",
        f"{_seconds(p95)}{_change(p95, p95_before, percent=False)}\n"
        f"{sparkline([t.queue_delay_p95 for t in trend])}",
        f"{_pct(c.handoff_accuracy)}{_change(c.handoff_accuracy, p.handoff_accuracy)}\n"
        f"{sparkline([t.handoff_accuracy for t in trend])}",
        f"{_pct(c.compensation_rate)}\n{c.compensations_failed} failed\n"
        f"{sparkline([t.compensation_rate for t in trend])}",
        f"{_pct(c.coverage)}\n{c.edges_taken} of {c.edges} edges\n"
        f"{sparkline([t.coverage for t in trend])}",
    ]


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
