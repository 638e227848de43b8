"""Commands about workflow specs: validate, plan, graph, schema. None need Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator.cli._app import app, console, print_json
from orchestrator.compiler import Plan, compile_plan
from orchestrator.loader import load_workflow
from orchestrator.settings import Settings
from orchestrator.spec import Workflow, json_schema

WorkflowFile = Annotated[Path, typer.Argument(help="Workflow YAML (or JSON) file.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _load(path: Path, *, import_tasks: bool = False) -> Workflow:
    settings = Settings()
    return load_workflow(
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
    """Check a workflow spec; exit 2 with one line naming step and field if invalid."""
    wf = _load(workflow, import_tasks=import_)
    summary = {
        "workflow": wf.name,
        "version": wf.version,
        "steps": len(wf.steps),
        "hash": wf.content_hash,
        "imported": import_,
    }
    if as_json:
        print_json({"valid": True, **summary})
    else:
        checked = " (tasks imported)" if import_ else ""
        console.print(
            f"{workflow}: valid{checked}: {wf.ref}, {len(wf.steps)} steps, hash {wf.content_hash}"
        )


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
            }
            for name, sp in ((n, plan.steps[n]) for n in plan.order)
        },
        "canvas": [
            {
                "kind": seg.kind,
                "after": list(seg.joins),
                "chain": list(seg.steps),
                "fan_out": list(seg.fans_out_to),
            }
            for seg in plan.segments
        ],
    }


@app.command()
def plan(workflow: WorkflowFile, as_json: AsJson = False) -> None:
    """Show the compiled plan: per-step dispatch, and the chains/groups/joins it forms."""
    wf = _load(workflow)
    compiled = compile_plan(wf, default_queue=Settings().default_queue)
    doc = plan_document(compiled)
    if as_json:
        print_json(doc)
        return
    table = Table(title=f"{wf.ref}  (hash {wf.content_hash})", title_justify="left")
    for col in ("#", "step", "runs", "queue", "starts when", "then"):
        table.add_column(col)
    for i, name in enumerate(compiled.order, 1):
        sp = compiled.steps[name]
        runs = sp.task or f"wait for signal {sp.wait_for!r}"
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
        head = (
            "submit"
            if not seg.joins
            else ("join(" + ", ".join(seg.joins) + ")" if seg.kind == "join" else seg.joins[0])
        )
        fan = f" → group({', '.join(seg.fans_out_to)})" if seg.fans_out_to else ""
        console.print(f"  {head} → chain({' | '.join(seg.steps)}){fan}")


@app.command()
def graph(
    workflow: WorkflowFile,
    fmt: Annotated[str, typer.Option("--format", help="mermaid or dot.")] = "mermaid",
) -> None:
    """Print the workflow's graph as Mermaid or Graphviz dot."""
    wf = _load(workflow)
    edges = [
        (up, name, "map" if wf.steps[name].map == up else "")
        for name in wf.steps
        for up in wf.steps[name].upstreams
    ]
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
def schema() -> None:
    """Print the workflow spec's JSON Schema (for editors)."""
    print_json(json_schema())
