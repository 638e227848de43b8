"""What a spec may name as code to run: only steps, and only from allowed modules.

A spec's ``task``, ``compensate``, ``fallback`` and ``when`` are
``module:function`` paths that a worker imports and calls. Without a rule, a
spec (anyone who can submit one) could name ``os:system`` and run a shell
command from the run input on every worker. Two rules close that:

- only functions marked with ``@step`` run (``steps.import_task`` checks the
  mark after import);
- ``ORCH_TASK_MODULES``, a comma-separated list of module prefixes, is checked
  here *before* anything is imported, so a spec cannot even import a module
  outside it (an import runs the module's top-level code).

This module holds the checks that need no import; it imports nothing of the
step machinery, so ``steps`` can use it.
"""

from __future__ import annotations

from orchestrator.errors import SpecError, TaskRefusedError


def split_path(path: str, *, where: str = "") -> tuple[str, list[str]]:
    """``module:attr.attr`` as (module, attrs); dunder attributes are refused.

    A dunder hop (``mod:fn.__globals__...``) would reach objects the module
    never meant to expose.
    """
    module, sep, attr = path.partition(":")
    parts = attr.split(".")
    if not sep or not module or not all(parts):
        raise SpecError(f"{path!r} is not of the form module:function", where=where)
    if any(p.startswith("__") for p in parts):
        raise TaskRefusedError(f"{path!r}: a task path may not name dunder attributes", where=where)
    return module, parts


def module_allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    """True when ``module`` is one of ``prefixes`` or inside one (empty allows all)."""
    if not prefixes:
        return True
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def check_module(module: str, prefixes: tuple[str, ...], path: str, *, where: str = "") -> None:
    """Refuse, before any import, a module outside ``ORCH_TASK_MODULES``."""
    if not module_allowed(module, prefixes):
        raise TaskRefusedError(
            f"{path!r} is outside ORCH_TASK_MODULES ({','.join(prefixes)}): not imported",
            where=where,
        )


def not_a_step(path: str, *, where: str = "") -> TaskRefusedError:
    """The refusal of a callable that is not marked ``@step``."""
    return TaskRefusedError(
        f"{path!r} is not a step: only functions marked @step (orchestrator.step) may run "
        "as task, compensate, fallback or when",
        where=where,
    )
