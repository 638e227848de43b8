"""User code in the working directory is importable, as ``celery -A`` makes it.

A user runs ``orch worker`` or ``orch validate --import`` next to their own
``mysteps.py``. The ``orch`` console script, unlike ``python -m``, does not
put the working directory on ``sys.path``, so ``mysteps:fetch`` would not be
found without ``PYTHONPATH=.``. Celery's own command inserts the working
directory, and so does ``orch``; worker processes it launches get it through
``PYTHONPATH``, so they find the same modules as the command that started them.
"""

from __future__ import annotations

import os
import sys


def add_cwd_to_sys_path() -> None:
    """Put the working directory first on ``sys.path`` unless it is there already."""
    cwd = os.getcwd()
    if not any(os.path.abspath(p or os.curdir) == cwd for p in sys.path):
        sys.path.insert(0, cwd)


def pythonpath_with_cwd(current: str | None) -> str:
    """``PYTHONPATH`` for a child process: the working directory, then ``current``."""
    cwd = os.getcwd()
    parts = [p for p in (current or "").split(os.pathsep) if p]
    if cwd in (os.path.abspath(p) for p in parts):
        return os.pathsep.join(parts)
    return os.pathsep.join([cwd, *parts])
