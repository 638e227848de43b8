"""Rendering the Lua library's names into what Redis runs.

Scripts are written with names (``K.items(RUN, s)``, ``s .. SF.attempts``);
Redis receives the compact forms (``(P .. 'run:' .. RUN .. ':items:' .. s)``,
``s .. '.att'``), substituted here from keys.py and fields.py. And since Redis
runs a script's whole chunk on every call, defining each of its functions
anew, the functions a script never calls are left out. Both keep the cost of
a call to what the script uses, however large the library grows.
"""

from __future__ import annotations

import re
from collections import Counter

from orchestrator.fields import (
    PART_FIELDS,
    PLAN_FIELDS,
    RUN_FIELDS,
    SCHEDULE_FIELDS,
    STEP_FIELDS,
    FieldSpec,
)
from orchestrator.keys import LAYOUT, KeySpec

_TABLES: dict[str, tuple[FieldSpec, ...]] = {
    "RF": RUN_FIELDS,
    "SF": STEP_FIELDS,
    "PF": PART_FIELDS,
    "LF": PLAN_FIELDS,
    "CF": SCHEDULE_FIELDS,
}
_KEYS = {spec.name: spec for spec in LAYOUT}
_FIELD = re.compile(r"\b(RF|SF|PF|LF|CF)\.(\w+)\b")
_KEY = re.compile(r"\bK\.(\w+)")
_FUNCTION = re.compile(r"^local function (\w+)\(", re.MULTILINE)
_WORD = re.compile(r"\w+")  # a name used elsewhere is a whole word there too


def render(source: str) -> str:
    return shake(keys(fields(uncommented(source))))


def uncommented(source: str) -> str:
    """The source without comments (the library's strings never hold ``--``)."""
    lines = (re.sub(r"\s*--[^\n]*$", "", line) for line in source.split("\n"))
    return "\n".join(line for line in lines if line.strip())


def fields(source: str) -> str:
    def stored(match: re.Match[str]) -> str:
        table, name = match.group(1), match.group(2)
        for spec in _TABLES[table]:
            if spec.name == name:
                return f"'{spec.stored}'"
        raise ValueError(f"{table}.{name} is not declared in orchestrator/fields.py")

    return _FIELD.sub(stored, source)


def keys(source: str) -> str:
    out, at = [], 0
    for match in _KEY.finditer(source):
        if match.start() < at:
            continue
        spec = _KEYS.get(match.group(1))
        if spec is None:
            raise ValueError(f"K.{match.group(1)} is not declared in orchestrator/keys.py")
        out.append(source[at : match.start()])
        at = match.end()
        args: list[str] = []
        if spec.params:
            args, at = _arguments(source, at, spec)
        out.append(_expression(spec, args))
    out.append(source[at:])
    return "".join(out)


def _arguments(source: str, at: int, spec: KeySpec) -> tuple[list[str], int]:
    """The call's arguments (rendered themselves), and where the call ends."""
    if source[at] != "(":
        raise ValueError(f"K.{spec.name} takes {', '.join(spec.params)}")
    depth, start, args = 0, at + 1, []
    for k in range(at, len(source)):
        ch = source[k]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(source[start:k])
                return [keys(a.strip()) for a in args], k + 1
        elif ch == "," and depth == 1:
            args.append(source[start:k])
            start = k + 1
    raise ValueError(f"K.{spec.name}( is never closed")


def _expression(spec: KeySpec, args: list[str]) -> str:
    if len(args) != len(spec.params):
        raise ValueError(f"K.{spec.name} takes {', '.join(spec.params)}, got {args}")
    pieces = ["P"]
    values = dict(zip(spec.params, args, strict=True))
    for part in re.split(r"({\w+})", spec.pattern):
        if part.startswith("{"):
            pieces.append(values[part[1:-1]])
        elif part:
            pieces.append(f"'{part}'")
    return "(" + " .. ".join(pieces) + ")"


def shake(source: str) -> str:
    """Leave out top-level functions nothing else in the source calls, until none is left."""
    while True:
        lines = source.split("\n")
        words = Counter(_WORD.findall(source))
        unused = [
            (k, name)
            for k, line in enumerate(lines)
            if (m := _FUNCTION.match(line)) and words[(name := m.group(1))] < 2
        ]
        if not unused:
            return source
        drop: set[int] = set()
        for k, _ in unused:
            drop.update(range(k, block_end(lines, k) + 1))
        source = "\n".join(line for k, line in enumerate(lines) if k not in drop)


def block_end(lines: list[str], start: int) -> int:
    """The last line of a top-level function: itself for a one-liner, else its `end`."""
    if lines[start].rstrip().endswith(" end"):
        return start
    for k in range(start + 1, len(lines)):
        if lines[k] == "end":
            return k
    raise ValueError(f"no end for the function at line {start + 1}")
