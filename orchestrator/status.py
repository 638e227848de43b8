"""The run status document: the stable JSON that ``orch status --json`` prints.

Internally step fields are short (``fetch.q``, ``fetch.att``) to keep run
hashes small; this module is the one translation to the public names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from orchestrator.fields import RUN_FIELDS, stored

_PRIORITY = stored(RUN_FIELDS, "priority")
_FAIRNESS_KEY = stored(RUN_FIELDS, "fairness_key")


def rfc3339(epoch: str | None) -> str | None:
    if not epoch:
        return None
    moment = datetime.fromtimestamp(float(epoch), tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _json(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


def _error(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        err = json.loads(raw)
    except ValueError:
        return raw
    return f"{err['type']}: {err['message']}" if isinstance(err, dict) else raw


def status_document(run_id: str, fields: dict[str, str], order: list[str]) -> dict[str, Any]:
    name, _, version = fields["wf"].rpartition(":")
    steps: dict[str, dict[str, Any]] = {}
    for step in order:
        entry: dict[str, Any] = {
            "state": fields.get(f"{step}.state", "PENDING"),
            "attempts": int(fields.get(f"{step}.att", "0")),
            "queued_at": rfc3339(fields.get(f"{step}.q")),
            "started_at": rfc3339(fields.get(f"{step}.s")),
            "finished_at": rfc3339(fields.get(f"{step}.f")),
            "error": _error(fields.get(f"{step}.err")),
            "output": _json(fields.get(f"{step}.out")),
        }
        if f"{step}.n" in fields and f"{step}.left" in fields:
            entry["elements"] = int(fields[f"{step}.n"])
            entry["elements_left"] = int(fields[f"{step}.left"])
        if fields.get(f"{step}.wake"):  # a sleep step: when it wakes (or woke)
            entry["wake_at"] = rfc3339(fields[f"{step}.wake"])
        if fields.get(f"{step}.fb"):
            entry["fallback"] = True
        started = fields.get(f"{step}.child")
        if started and started.endswith(","):  # a map over a child workflow: every child
            entry["children"] = started.rstrip(",").split(",")
        elif started:  # a child workflow step: its latest child run
            entry["child"] = started
        if f"{step}.cq" in fields:  # its compensation's own times (fields.py undo_*)
            entry["compensation"] = {
                "attempts": int(fields.get(f"{step}.catt", "0")),
                "queued_at": rfc3339(fields.get(f"{step}.cq")),
                "started_at": rfc3339(fields.get(f"{step}.cs")),
                "finished_at": rfc3339(fields.get(f"{step}.cf")),
            }
        steps[step] = entry
    doc: dict[str, Any] = {
        "id": run_id,
        "workflow": name,
        "version": int(version),
        "state": fields["state"],
        "input": _json(fields.get("input")),
        "result": _json(fields.get("result")),
        "error": fields.get("error") or None,
        "created_at": rfc3339(fields.get("created_at")),
        "finished_at": rfc3339(fields.get("finished_at")),
        "priority": int(fields.get(_PRIORITY) or 0),
        "fairness_key": fields.get(_FAIRNESS_KEY) or None,
        "steps": steps,
    }
    if fields.get("deadline_at"):  # a run with a deadline: when it is cancelled if not done
        doc["deadline_at"] = rfc3339(fields["deadline_at"])
    if fields.get("parent"):  # a child run: the run and step that started it
        run, step, index = fields["parent"].split("|")
        doc["parent"] = {"run": run, "step": step} | ({"index": int(index)} if index else {})
    return doc
