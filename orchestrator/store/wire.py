"""Decoding what Redis hands back: bytes to text, the run's carried context, a plan hash.

Kept apart from ``replies`` so that readers (``reads``, ``scores``) need none
of the engine's outcome types.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.fields import PLAN_FIELDS, stored

META = stored(PLAN_FIELDS, "meta")
MESSAGE = stored(PLAN_FIELDS, "message")
UNDO_MESSAGE = stored(PLAN_FIELDS, "undo_message")


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def optional(value: Any) -> str | None:
    return None if value is None else text(value)


def context(raw: Any) -> dict[str, str]:
    """The run's carried context (fields.py ``context``); {} when it has none."""
    value = optional(raw)
    return dict(json.loads(value)) if value else {}


def split_plan(raw: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, dict[str, str]]]:
    """A stored plan hash as (record JSON by step, templates by step); the meta left out.

    Step names are identifiers (spec.StepName), so a field with a dot is one of a
    step's other fields, never a record.
    """
    records: dict[str, bytes] = {}
    templates: dict[str, dict[str, str]] = {}
    for field, value in raw.items():
        if field == META:
            continue
        step, dot, rest = field.partition(".")
        if dot:
            templates.setdefault(step, {})["." + rest] = value.decode()
        else:
            records[field] = value
    return records, templates
