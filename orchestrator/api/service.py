"""The one Client the app shares, and the two things HTTP adds to it.

First, a workflow is named by the caller, so it is never taken for a file path
(``Client.resolve`` would read ``name.yaml`` from the server's disk): names
are looked up in Redis only, and a registered version, being immutable, is
cached. Second, a spec sent in the body may name only code the server has
checked: inside ``ORCH_TASK_MODULES`` (required for inline specs) and
importable here as an ``@step`` (README "Only steps run").
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

from orchestrator.api.batching import SubmitBatcher
from orchestrator.errors import NotFoundError, SpecError, TaskRefusedError

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.spec import Workflow

#: Seconds a name without a version keeps meaning the same newest version: a version
#: registered elsewhere is picked up within this, and a submit saves a round trip.
NEWEST_FOR = 1.0

_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]{0,99})(?::(?P<version>[0-9]{1,9}))?$")


class Service:
    """What the routes call: the shared client, plus workflow lookups that are safe for HTTP."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.batcher = SubmitBatcher(client)
        self._versions: dict[tuple[str, int], Workflow] = {}
        self._plans: dict[str, dict[str, Any]] = {}
        self._newest_seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def workflow(self, ref: str) -> Workflow:
        """A registered version by ``name[:version]`` (the newest without a version)."""
        found = _REF.match(ref)
        if found is None:
            raise NotFoundError(f"workflow {ref!r} not found: name it as name or name:version")
        name, version = found["name"], found["version"]
        number = int(version) if version is not None else self._newest(name)
        cached = self._versions.get((name, number))
        if cached is not None:
            return cached
        wf = self.client.reads.workflow(name, number)
        with self._lock:
            self._versions[(name, number)] = wf
        return wf

    def plan_document(self, wf: Workflow) -> dict[str, Any]:
        """``orch plan --json`` of a version, compiled once (a version never changes)."""
        found = self._plans.get(wf.ref)
        if found is None or found["hash"] != wf.content_hash:
            from orchestrator.cli._spec import plan_document  # noqa: PLC0415
            from orchestrator.compiler import compile_plan  # noqa: PLC0415

            default_queue = self.client.settings.default_queue
            found = plan_document(compile_plan(wf, default_queue=default_queue))
            self._plans[wf.ref] = found
        return found

    def _newest(self, name: str) -> int:
        now = time.monotonic()
        seen = self._newest_seen.get(name)
        if seen is not None and now - seen[0] < NEWEST_FOR:
            return seen[1]
        versions = self.client.reads.versions(name)
        if not versions:
            raise NotFoundError(f"workflow {name!r} has never been submitted")
        self._newest_seen[name] = (now, versions[-1])
        return versions[-1]

    def inline(self, document: dict[str, Any], *, where: str = "workflow") -> Workflow:
        """A spec sent in a request, validated; its code is checked before anything runs."""
        from orchestrator.graph import check_steps, validate  # noqa: PLC0415
        from orchestrator.loader import workflow_from_data  # noqa: PLC0415

        settings = self.client.settings
        wf = workflow_from_data(document, source=where)
        try:
            validate(wf, visibility_timeout=settings.visibility_timeout)
        except SpecError as exc:
            raise SpecError(str(exc), where=where) from None
        modules = settings.task_module_prefixes
        if not modules:
            raise TaskRefusedError(
                "a workflow sent over HTTP may name only steps inside ORCH_TASK_MODULES, and "
                "the server sets none; register it with `orch submit` or set ORCH_TASK_MODULES",
                where=where,
            )
        unchecked = check_steps(wf, modules)
        if unchecked:
            raise TaskRefusedError(
                f"{unchecked[0]!r} cannot be imported on the server, so it cannot be checked "
                "as a step; a workflow sent over HTTP may name only steps the server can import",
                where=where,
            )
        return wf

    def resolve(self, workflow: str | dict[str, Any]) -> Workflow:
        if isinstance(workflow, str):
            return self.workflow(workflow)
        return self.inline(workflow)
