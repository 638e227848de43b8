"""Decoding what Redis hands back: bytes to text, the run's carried context.

Kept apart from ``replies`` so that readers (``reads``, ``scores``) need none
of the engine's outcome types.
"""

from __future__ import annotations

import json
from typing import Any


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def optional(value: Any) -> str | None:
    return None if value is None else text(value)


def context(raw: Any) -> dict[str, str]:
    """The run's carried context (fields.py ``context``); {} when it has none."""
    value = optional(raw)
    return dict(json.loads(value)) if value else {}
