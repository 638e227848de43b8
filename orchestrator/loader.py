"""Turning user text (YAML, JSON) into a validated ``Workflow``, with one-line errors.

PyYAML silently keeps the last of two equal keys; a workflow with two steps of
the same name would lose one without a word, so the loader refuses duplicates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import SpecError
from orchestrator.graph import validate
from orchestrator.spec import Workflow


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a repeated key."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        try:
            repeated = key in seen
        except TypeError:  # a list or mapping used as a key
            raise SpecError(f"line {line}: a key must be a plain value, not {key!r}") from None
        if repeated:
            raise SpecError(f"line {line}: duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def describe_validation_error(exc: ValidationError) -> str:
    """The first error of a pydantic failure as one line naming step and field."""
    err = exc.errors()[0]
    loc = [str(x) for x in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    if len(loc) >= 2 and loc[0] == "steps":
        field = ".".join(loc[2:])
        where = f"step {loc[1]!r}, field {field!r}" if field else f"step {loc[1]!r}"
    elif loc:
        where = f"field {'.'.join(loc)!r}"
    else:
        where = "workflow"
    return f"{where}: {msg}"


def workflow_from_data(data: object, *, source: str = "workflow") -> Workflow:
    if not isinstance(data, dict):
        raise SpecError("a workflow must be a mapping with name, version and steps", where=source)
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc), where=source) from None


def load_workflow(
    path: str | Path, *, import_tasks: bool = False, visibility_timeout: float | None = None
) -> Workflow:
    """Load and validate a YAML (or JSON) workflow file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", where=str(p)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start})", where=str(p)) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except SpecError as exc:
        raise SpecError(str(exc), where=str(p)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{line}invalid YAML: {problem}", where=str(p)) from None
    wf = workflow_from_data(data, source=str(p))
    try:
        return validate(wf, import_tasks=import_tasks, visibility_timeout=visibility_timeout)
    except SpecError as exc:
        raise SpecError(str(exc), where=str(p)) from None


def load_family(
    path: str | Path, *, import_tasks: bool = False, visibility_timeout: float | None = None
) -> dict[str, Workflow]:
    """The workflow at ``path`` and the child workflows it names that have a file beside it.

    A child named ``triage-publish`` is read from ``triage-publish.yaml`` (or
    ``.yml``, ``.json``) in the same folder, and so on down; a child with no
    such file is left to the registered versions. The children come first,
    the file's own workflow last: the order to register them in. Cycles
    through them are refused (``children.check_cycles``).
    """
    from orchestrator.children import check_cycles, child_steps, split_ref  # noqa: PLC0415

    top = Path(path)
    found: dict[str, Workflow] = {}
    order: list[str] = []

    def visit(p: Path) -> None:
        wf = load_workflow(p, import_tasks=import_tasks, visibility_timeout=visibility_timeout)
        found[wf.name] = wf
        for ref in sorted(set(child_steps(wf).values())):
            name = split_ref(ref)[0]
            if name in found:
                continue
            beside = [p.with_name(name + ext) for ext in (".yaml", ".yml", ".json")]
            for candidate in beside:
                if candidate.is_file():
                    visit(candidate)
                    break
        order.append(wf.name)

    visit(top)
    try:
        check_cycles(found)
    except SpecError as exc:
        raise SpecError(str(exc), where=str(top)) from None
    return {name: found[name] for name in order}


def family_beside(
    workflow: Workflow | str | Path, wf: Workflow, visibility_timeout: float | None
) -> list[Workflow]:
    """The child workflows that a spec file names and that have a file beside it.

    What a submit of that file registers first; none when ``workflow`` was not a file.
    """
    text = str(workflow)
    if not (isinstance(workflow, Path) or text.endswith((".yaml", ".yml", ".json"))):
        return []
    family = load_family(text, visibility_timeout=visibility_timeout)
    return [member for name, member in family.items() if name != wf.name]
