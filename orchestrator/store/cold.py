"""Defining a script's rarely called functions only when one is called.

Redis runs a script's whole chunk on every call, and each ``local function``
of it is a closure made anew, its upvalues looked up one by one: with a
hundred functions that is a large share of a call's cost, though a chain
step calls a third of them. A module names its rarely called functions in a
``--! cold: a, b`` line; here they move into loaders defined just before the
script's body (at the line ``MARK``), and every other reference to one
becomes ``COLD.name``, a table whose first miss runs the loaders. So a call
that needs none of them pays for two small closures instead of all of them,
and one that needs any pays about what it paid before.

The loaders sit after every top-level local of the library, so a cold
function sees the same names as where it was written (the library defines
each name once: tests/unit/test_lua_library.py). A loader may capture at
most 60 upvalues (Lua 5.1), so the cold functions are split across loaders.
"""

from __future__ import annotations

import re

from orchestrator.store.render import block_end

MARK = "COLD_FUNCTIONS_GO_HERE"
_COLD = re.compile(r"^--! cold:(.*)$", re.MULTILINE)
_HOT = re.compile(r"^--! hot:(.*)$", re.MULTILINE)
_FUNCTION = re.compile(r"^local function (\w+)\(")
_LOCALS = re.compile(r"^local ((?:\w+\s*,\s*)*\w+)")
_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_]\w*")
_UPVALUES = 50  # below Lua 5.1's 60, with room for COLD and the loader's own


def cold_names(source: str) -> set[str]:
    """The functions a module's ``--! cold:`` line names."""
    found: set[str] = set()
    for match in _COLD.finditer(source):
        found.update(n.strip() for n in match.group(1).split(",") if n.strip())
    return found


def hot_names(source: str) -> set[str]:
    """The cold functions a script's ``--! hot: a, b`` line keeps defined on every call.

    A script that calls one of them on every call (submit.lua: the plan's meta,
    the run's first moves) would otherwise load every cold function each time.
    """
    found: set[str] = set()
    for match in _HOT.finditer(source):
        found.update(n.strip() for n in match.group(1).split(",") if n.strip())
    return found


def defer(source: str, cold: set[str]) -> str:
    """Move the cold functions of a rendered script behind ``COLD`` (see the module doc)."""
    lines = source.split("\n")
    blocks, hot = _split(lines, cold)
    if not blocks:
        return "\n".join(line for line in hot if line != MARK)
    at = hot.index(MARK)
    before = hot[:at]
    top = _top_level(before)
    groups = _grouped(blocks, top)
    where = {name: k for k, group in enumerate(groups) for name, _ in group}
    loaders = [_loader(k, group, where, top) for k, group in enumerate(groups)]
    calls = "; ".join(f"cold_{k}(t)" for k in range(len(groups)))
    head = [
        "local load_cold",
        "local COLD = setmetatable({}, {__index = function(t, k) load_cold(t); "
        "return rawget(t, k) end})",
    ]
    body = [_calls_through(line, set(where)) for line in hot]
    at = body.index(MARK)
    tail = [*loaders, f"load_cold = function(t) {calls} end"]
    first = 1 if body and body[0].startswith("--") else 0
    return "\n".join([*body[:first], *head, *body[first:at], *tail, *body[at + 1 :]])


def _split(lines: list[str], cold: set[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The cold functions' blocks (name, lines) in source order, and the other lines."""
    blocks: list[tuple[str, list[str]]] = []
    hot: list[str] = []
    k = 0
    while k < len(lines):
        match = _FUNCTION.match(lines[k])
        if match and match.group(1) in cold:
            end = block_end(lines, k)
            blocks.append((match.group(1), lines[k : end + 1]))
            k = end + 1
            continue
        hot.append(lines[k])
        k += 1
    return blocks, hot


def _top_level(lines: list[str]) -> set[str]:
    """The names declared local at the top level of these lines."""
    names: set[str] = set()
    for line in lines:
        match = _FUNCTION.match(line)
        if match:
            names.add(match.group(1))
            continue
        decl = _LOCALS.match(line)
        if decl and not line.startswith("local function"):
            names.update(n.strip() for n in decl.group(1).split(","))
    return names


def _identifiers(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(text) if t[0] not in "'\""}


def _grouped(
    blocks: list[tuple[str, list[str]]], top: set[str]
) -> list[list[tuple[str, list[str]]]]:
    """Consecutive blocks in groups whose loader captures at most _UPVALUES names."""
    groups: list[list[tuple[str, list[str]]]] = [[]]
    captured: set[str] = set()
    for name, block in blocks:
        needs = _identifiers("\n".join(block)) & top
        if groups[-1] and len(captured | needs) > _UPVALUES:
            groups.append([])
            captured = set()
        groups[-1].append((name, block))
        captured |= needs
    return groups


def _loader(
    k: int, group: list[tuple[str, list[str]]], where: dict[str, int], top: set[str]
) -> str:
    """One loader: its functions (calling another loader's through COLD), then their export."""
    elsewhere = {n for n, g in where.items() if g != k}
    text = [_calls_through(line, elsewhere) for _, block in group for line in block]
    exports = "".join(f"t.{name} = {name}; " for name, _ in group)
    return "\n".join([f"local function cold_{k}(t)", *text, exports, "end"])


def _calls_through(line: str, names: set[str]) -> str:
    """The line with each call of a function in ``names`` made through COLD."""
    if not names:
        return line
    out, at = [], 0
    for match in _TOKEN.finditer(line):
        word = match.group(0)
        if word not in names:
            continue
        before = line[: match.start()].rstrip()
        after = line[match.end() :].lstrip()
        if before.endswith((".", ":")) or re.match(r"=[^=]", after):
            continue  # a field, or a table constructor's key
        if not after.startswith("("):
            raise ValueError(f"the cold function {word} is used other than by a call: {line!r}")
        out.append(line[at : match.start()] + "COLD.")
        at = match.start()
    out.append(line[at:])
    return "".join(out)
