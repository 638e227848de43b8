"""Commands about workflow specs: validate, plan, graph, schema. None need Redis.

``validate --import`` uses Redis when one is configured or running: it stores
the step contracts it has just read (see ``orchestrator.contracts``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli._app import app, console, escape, print_json

if TYPE_CHECKING:
    from orchestrator.compiler import Plan, Segment, StepPlan
    from orchestrator.spec import Workflow

WorkflowFile = Annotated[Path, typer.Argument(help="Workflow YAML (or JSON) file.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _load(path: Path, *, import_tasks: bool = False) -> Workflow:
    from orchestrator.loader import load_workflow  # noqa: PLC0415 - the spec models, on demand
    from orchestrator.settings import Settings  # noqa: PLC0415

    settings = Settings()
    return load_workflow(
        path, import_tasks=import_tasks, visibility_timeout=settings.visibility_timeout
    )


def _load_family(path: Path, *, import_tasks: bool = False) -> dict[str, Workflow]:
    from orchestrator.loader import load_family  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415

    settings = Settings()
    return load_family(
        path, import_tasks=import_tasks, visibility_timeout=settings.visibility_timeout
    )


@app.command()
def validate(
    workflow: WorkflowFile,
    import_: Annotated[
        bool, typer.Option("--import", help="Also import every task and check parameter fill.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Check a workflow spec; exit 2 with one line naming step and field if invalid.

    Child workflows it names with a spec file beside it (NAME.yaml) are checked
    too, and a cycle through them that no max_depth bounds is refused.
    """
    wf = _load(workflow, import_tasks=import_)
    _load_family(workflow, import_tasks=import_)
    stored = _store_contracts(wf) if import_ else None
    if as_json:
        extra = {} if stored is None else {"contracts_stored": stored[0]}
        print_json({**validate_document(wf, imported=import_), **extra})
        return
    checked = " (tasks imported)" if import_ else ""
    console.print(
        f"{escape(str(workflow))}: valid{checked}: {wf.ref}, {len(wf.steps)} steps, "
        f"hash {wf.content_hash}",
        highlight=False,
    )
    if stored is not None:
        console.print(escape(stored[1]), highlight=False)


def _store_contracts(wf: Workflow) -> tuple[bool, str]:
    """Store the step contracts in the configured Redis, if there is one: (stored, why)."""
    from orchestrator import contracts  # noqa: PLC0415
    from orchestrator.connection import connect, redact, resolve_url  # noqa: PLC0415
    from orchestrator.errors import RedisUnavailableError  # noqa: PLC0415
    from orchestrator.keys import Keys  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415

    settings = Settings()
    try:
        url = resolve_url(settings)
        client = connect(url, settings)
    except RedisUnavailableError as exc:
        return False, f"step contracts not stored: {exc}"
    try:
        contracts.ContractStore(client, Keys(settings.key_prefix)).save(
            wf, contracts.from_imports(wf)
        )
    finally:
        client.close()
    return True, f"step contracts stored in Redis at {redact(url)}: clients check data by them"


def _waits_for(sp: StepPlan) -> str:
    """What a step that runs no task waits for: a signal, a duration, or a time."""
    if sp.sleep is not None:
        return f"sleep {sp.sleep:g}s"
    if sp.until is not None:
        return f"sleep until {sp.until}"
    return f"wait for signal {sp.wait_for!r}"


def plan_document(plan: Plan) -> dict[str, Any]:
    return {
        "workflow": plan.workflow,
        "version": plan.version,
        "hash": plan.content_hash,
        "roots": list(plan.roots),
        "finals": list(plan.finals),
        "steps": {
            name: {
                "task": sp.task,
                "queue": sp.queue,
                "after": list(sp.upstreams),
                "join": len(sp.upstreams),
                "then": list(sp.downstreams),
                "map": sp.map_source,
                "wait_for": sp.wait_for,
                **({"sleep": sp.sleep} if sp.sleep is not None else {}),
                **({"until": sp.until} if sp.until is not None else {}),
            }
            for name, sp in ((n, plan.steps[n]) for n in plan.order)
        },
        "canvas": [
            {
                "kind": seg.kind,
                "after": list(seg.joins),
                "chain": list(seg.steps),
                "fan_out": list(seg.fans_out_to),
                "group": _group_members(plan, seg.fans_out_to),
                "feeds_joins": _join_targets(plan, seg.fans_out_to),
            }
            for seg in plan.segments
        ],
    }


def _group_members(plan: Plan, targets: tuple[str, ...]) -> list[str]:
    """The fan-out targets this segment starts on its own (it is their one upstream)."""
    return [t for t in targets if len(plan.steps[t].upstreams) == 1]


def _join_targets(plan: Plan, targets: tuple[str, ...]) -> list[str]:
    """The fan-out targets that are joins: this segment only counts toward them."""
    return [t for t in targets if len(plan.steps[t].upstreams) > 1]


def canvas_line(plan: Plan, seg: Segment) -> str:
    """One segment as ``head → chain(...) → group(...); counts toward joins: ...``."""
    if not seg.joins:
        head = "submit"
    elif seg.kind == "join":
        head = "join(" + ", ".join(seg.joins) + ")"
    else:
        head = seg.joins[0]
    line = f"{head} → chain({' | '.join(seg.steps)})"
    members = _group_members(plan, seg.fans_out_to)
    if len(members) > 1:
        line += f" → group({', '.join(members)})"
    elif members:
        line += f" → {members[0]}"
    joins = _join_targets(plan, seg.fans_out_to)
    if joins:
        line += f"; counts toward joins: {', '.join(joins)}"
    return line


@app.command()
def plan(workflow: WorkflowFile, as_json: AsJson = False) -> None:
    """Show the compiled plan: per-step dispatch, and the chains/groups/joins it forms."""
    from rich.table import Table  # noqa: PLC0415

    from orchestrator.compiler import compile_plan  # noqa: PLC0415
    from orchestrator.settings import Settings  # noqa: PLC0415

    wf = _load(workflow)
    compiled = compile_plan(wf, default_queue=Settings().default_queue)
    doc = plan_document(compiled)
    if as_json:
        print_json(doc)
        return
    table = Table(title=f"{wf.ref}  (hash {wf.content_hash})", title_justify="left")
    table.add_column("#")
    table.add_column("step", no_wrap=True)
    for col in ("runs", "queue", "starts when", "then"):
        table.add_column(col, overflow="fold")
    for i, name in enumerate(compiled.order, 1):
        sp = compiled.steps[name]
        runs = sp.task or _waits_for(sp)
        if sp.map_source:
            runs = f"{runs}  × each of {sp.map_source}"
        ups = sp.upstreams
        when = (
            "at submit"
            if not ups
            else (ups[0] + " done" if len(ups) == 1 else f"join of {', '.join(ups)}")
        )
        table.add_row(str(i), name, runs, sp.queue, when, ", ".join(sp.downstreams) or "(final)")
    console.print(table)
    console.print("Canvas:")
    for seg in compiled.segments:
        console.print(f"  {canvas_line(compiled, seg)}", highlight=False)


def _edges(wf: Workflow) -> list[tuple[str, str, str]]:
    return [
        (up, name, "map" if wf.steps[name].map == up else "")
        for name in wf.steps
        for up in wf.steps[name].upstreams
    ]


def graph_document(wf: Workflow) -> dict[str, Any]:
    """``orch graph --json`` (and the HTTP API's graph): nodes and edges, map edges marked."""
    return {
        "workflow": wf.name,
        "version": wf.version,
        "nodes": list(wf.steps),
        "edges": [{"from": a, "to": b, "map": bool(k)} for a, b, k in _edges(wf)],
    }


def validate_document(wf: Workflow, *, imported: bool) -> dict[str, Any]:
    """``orch validate --json`` without the contract note."""
    return {
        "valid": True,
        "workflow": wf.name,
        "version": wf.version,
        "steps": len(wf.steps),
        "hash": wf.content_hash,
        "imported": imported,
    }


@app.command()
def graph(
    workflow: WorkflowFile,
    fmt: Annotated[str, typer.Option("--format", help="mermaid or dot.")] = "mermaid",
    as_json: AsJson = False,
) -> None:
    """Print the workflow's graph as Mermaid or Graphviz dot (or, with --json, as data)."""
    wf = _load(workflow)
    edges = _edges(wf)
    if as_json:
        print_json(graph_document(wf))
        return
    if fmt == "dot":
        lines = [f'digraph "{wf.ref}" {{'] + [f"  {n};" for n in wf.steps]
        lines += [f"  {a} -> {b}{' [label=map]' if k else ''};" for a, b, k in edges] + ["}"]
    elif fmt == "mermaid":
        lines = ["graph TD"] + [f"  {n}" for n in wf.steps if not wf.steps[n].upstreams]
        lines += [f"  {a} -->{'|map|' if k else ''} {b}" for a, b, k in edges]
    else:
        raise typer.BadParameter("use mermaid or dot", param_hint="--format")
    print("\n".join(lines))


@app.command()
def schema(as_json: AsJson = False) -> None:
    """Print the workflow spec's JSON Schema (for editors); it is JSON with or without --json."""
    from orchestrator.spec import json_schema  # noqa: PLC0415

    del as_json  # accepted because every read command takes --json; the schema is JSON anyway
    print_json(json_schema())
