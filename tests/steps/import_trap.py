"""A step module with an import-time side effect, to show when a module is imported.

Importing it creates the file named by ``ORCH_TEST_IMPORT_TRAP`` (when set).
A worker whose ``ORCH_TASK_MODULES`` leaves this module out must refuse a step
of it without importing it, so the file must never appear. (Product code has
no import-time side effects; this module has one on purpose.)
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator import step

_TRAP = os.environ.get("ORCH_TEST_IMPORT_TRAP")
if _TRAP:
    Path(_TRAP).write_text(f"imported by pid {os.getpid()}\n")


@step
def caught() -> str:
    """A genuine step: what refuses it is its module, not a missing mark."""
    return "imported"
