"""The Lua library's structure: declared dependencies, one source for keys, fields and args.

These read the Lua as text (no Redis): each module may use only what the
modules it requires define, may not touch another module's state, and no
script names a key, a run-hash field or an argument position by hand.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from orchestrator import fields, keys
from orchestrator.store import inputs
from orchestrator.store.scripts import module_source, requires, resolve, script_source

FOLDER = Path(str(resources.files("orchestrator") / "scripts"))
SCRIPTS = sorted(p.stem for p in FOLDER.glob("*.lua"))
MODULES = sorted(p.stem for p in (FOLDER / "lib").glob("*.lua"))
#: Names every piece of Lua may use: generated tables, Redis's and Lua's own.
GIVEN = {"MOVES", "REOPENS", "K", "RF", "SF", "PF", "A", "redis", "cjson", "qd_bucket"}


def code_of(source: str) -> str:
    """The source without comments and string literals (they name nothing)."""
    source = re.sub(r"--[^\n]*", "", source)
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", source)


@cache
def top_level(name: str) -> tuple[frozenset[str], frozenset[str]]:
    """(functions, variables) a module defines at its top level."""
    code = code_of(module_source(name))
    functions = set(re.findall(r"^local function (\w+)", code, re.MULTILINE))
    variables: set[str] = set()
    for names in re.findall(r"^local ((?:\w+\s*,\s*)*\w+)\b(?!\s*\()", code, re.MULTILINE):
        variables.update(n.strip() for n in names.split(",") if n.strip() != "function")
    return frozenset(functions), frozenset(variables - functions)


def declared_anywhere(code: str) -> set[str]:
    """Every name a piece of Lua declares local, at any depth (so shadowing is its own)."""
    found = set(re.findall(r"\blocal function (\w+)", code))
    for names in re.findall(r"\blocal ((?:\w+\s*,\s*)*\w+)", code):
        found.update(n.strip() for n in names.split(","))
    for names in re.findall(r"\bfor ((?:\w+\s*,\s*)*\w+)\s+(?:in|=)", code):
        found.update(n.strip() for n in names.split(","))
    for params in re.findall(r"function\s*\w*\s*\(([^)]*)\)", code):
        found.update(p.strip() for p in params.split(",") if p.strip())
    return found


def owner_of() -> dict[str, str]:
    owners: dict[str, str] = {}
    for module in MODULES:
        functions, variables = top_level(module)
        for n in functions | variables:
            assert n not in owners, f"{n} is defined by both {owners[n]} and {module}"
            owners[n] = module
    return owners


def used_names(code: str) -> set[str]:
    code = re.sub(r"\.\s*\w+", "", code)  # field accesses (x.name) name no variable
    return set(re.findall(r"\b[A-Za-z_]\w*\b", code))


def reachable(needed: tuple[str, ...]) -> set[str]:
    return set(resolve(needed))


def pieces() -> list[tuple[str, str, tuple[str, ...]]]:
    """(label, source, the modules it may use) for every module and script body."""
    out = [(f"lib/{m}", module_source(m), tuple(requires(module_source(m)))) for m in MODULES]
    for s in SCRIPTS:
        body = (FOLDER / f"{s}.lua").read_text()
        out.append((s, body, requires(body)))
    return out


def test_every_script_and_module_assembles_without_cycles() -> None:
    for script in SCRIPTS:
        assert script in inputs.BY_SCRIPT, f"{script}.lua has no argument type in inputs.py"
        source = script_source(script)
        assert source.count("local A = {") == 1
    assert set(inputs.BY_SCRIPT) == set(SCRIPTS)


@pytest.mark.parametrize(("label", "source", "needed"), pieces())
def test_lua_uses_only_what_it_requires(label: str, source: str, needed: tuple[str, ...]) -> None:
    code = code_of(source)
    own = declared_anywhere(code)
    allowed = reachable(needed)
    owners = owner_of()
    for name in sorted(used_names(code) - own - GIVEN):
        owner = owners.get(name)
        if owner is None:
            continue  # a Lua builtin (ipairs, tonumber, string, ...)
        assert owner in allowed, f"{label} uses {name} from {owner} without requiring it"
        _, state = top_level(owner)
        if name in state and not name.isupper():
            pytest.fail(f"{label} touches {owner}'s state {name!r}: go through its functions")


@pytest.mark.parametrize(("label", "source", "needed"), pieces())
def test_no_module_assigns_another_modules_names(
    label: str, source: str, needed: tuple[str, ...]
) -> None:
    code = code_of(source)
    own = declared_anywhere(code)
    for name, owner in owner_of().items():
        if label == f"lib/{owner}" or name in own:
            continue
        assert not re.search(rf"^\s*{name}\s*=[^=]", code, re.MULTILINE), (
            f"{label} assigns {owner}'s {name}"
        )


@pytest.mark.parametrize(("label", "source", "needed"), pieces())
def test_keys_fields_and_args_come_from_their_tables(
    label: str, source: str, needed: tuple[str, ...]
) -> None:
    code = code_of(source)
    assert not re.search(r"\bP\s*\.\.", code), f"{label} builds a key by hand: use K"
    raw = re.sub(r"--[^\n]*", "", source)
    assert not re.search(r"'\.\w+'", raw), f"{label} names a step field by hand: use SF"
    assert not re.search(r"\b(hget|hset|num)\(\s*'", raw), f"{label}: use RF/SF, not a literal"
    assert "ARGV[" not in raw or label == "lib/args", f"{label} reads ARGV by position: use A"
    layout = {spec.name for spec in keys.LAYOUT}
    for used in re.findall(r"\bK\.(\w+)", code):
        assert used in layout, f"{label} uses K.{used}, which keys.LAYOUT does not name"
    tables = {"RF": fields.RUN_FIELDS, "SF": fields.STEP_FIELDS, "PF": fields.PART_FIELDS}
    for table, name in re.findall(r"\b(RF|SF|PF)\.(\w+)", code):
        assert name in {f.name for f in tables[table]}, f"{label}: {table}.{name} is undeclared"


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_reads_only_its_declared_arguments(script: str) -> None:
    body = code_of((FOLDER / f"{script}.lua").read_text())
    declared = set(inputs.names(inputs.BY_SCRIPT[script]))
    for used in re.findall(r"\bA\.(\w+)", body):
        assert used in declared, f"{script}.lua reads A.{used}, not in {declared}"


def test_plan_records_use_only_declared_keys() -> None:
    declared = {f.name for f in fields.PLAN_RECORD} | {f.name for f in fields.DEPENDENCY_RECORD}
    lua = "".join(module_source(m) for m in MODULES)
    # promote.lua reads delayed-set entries (dispatch.lua documents their fields), not records.
    lua += "".join((FOLDER / f"{s}.lua").read_text() for s in SCRIPTS if s != "promote")
    for used in re.findall(r"\b(?:i|d|info\(\w+\)|known)\.(\w+)", code_of(lua)):
        assert used in declared, f"plan or dependency record field {used!r} is undeclared"


def test_no_python_module_reads_a_reply_by_position() -> None:
    root = Path(str(resources.files("orchestrator"))).parent
    offenders = []
    for path in [*root.glob("orchestrator/**/*.py"), *root.glob("workers/*.py")]:
        if path.name == "replies.py":
            continue
        text = path.read_text()
        if re.search(r"\breply\[|startswith\(\"(ok|fallback|stale)", text):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_the_engine_reference_is_current() -> None:
    doc = (Path(str(resources.files("orchestrator"))).parent / "docs" / "ENGINE.md").read_text()
    assert keys.reference() in doc, "docs/ENGINE.md: paste keys.reference() again"
    assert fields.reference() in doc, "docs/ENGINE.md: paste fields.reference() again"


@pytest.mark.parametrize("script", SCRIPTS)
def test_rendering_leaves_no_name_and_no_unused_function(script: str) -> None:
    source = script_source(script)
    assert not re.search(r"\b(K|RF|SF|PF)\.\w", source), "a name was left unrendered"
    for name in re.findall(r"^local function (\w+)\(", source, re.MULTILINE):
        assert len(re.findall(rf"\b{name}\b", source)) > 1, f"{script}: {name} is never called"


def test_keys_render_to_what_python_names() -> None:
    from orchestrator.store.render import keys as render_keys

    lua = render_keys("K.items(RUN, s) K.dep_calls(d.name, kind) K.leases K.score_rolled(hget(x))")
    assert lua == (
        "(P .. 'run:' .. RUN .. ':items:' .. s) (P .. 'dep:' .. d.name .. ':' .. kind) "
        "(P .. 'leases') (P .. 'score:' .. hget(x) .. ':rolled')"
    )
    assert keys.Keys("p:").items("r1", "s") == "p:run:r1:items:s"
    assert keys.Keys("p:").dep_calls("llm", "ok") == "p:dep:llm:ok"


def test_cold_functions_are_defined_behind_their_loader() -> None:
    from orchestrator.store.cold import MARK, defer

    lua = "\n".join(
        [
            "local x = 1",
            "local function rare(a) return a + x end",
            "local function hot(a) return rare(a) end",
            MARK,
            "return {hot(1), 'rare(', t.rare, {rare = 2}}",
        ]
    )
    out = defer(lua, {"rare"})
    assert "local function hot(a) return COLD.rare(a) end" in out
    assert "return {hot(1), 'rare(', t.rare, {rare = 2}}" in out
    loader = out.index("local function cold_0(t)")
    assert out.index("local function rare(a)") > loader > out.index("local function hot(a)")
    assert MARK not in out
    with pytest.raises(ValueError, match="rare is used other than by a call"):
        defer(lua.replace("return rare(a)", "return rare"), {"rare"})


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_cold_function_is_not_defined_at_the_top_level(script: str) -> None:
    from orchestrator.store.cold import cold_names, hot_names

    cold = set().union(*(cold_names(module_source(m)) for m in MODULES))
    hot = hot_names((FOLDER / f"{script}.lua").read_text())
    assert hot <= cold, f"{script} names hot what no module names cold: {hot - cold}"
    source = script_source(script)
    top, _, _ = source.partition("local function cold_0(t)")
    defined = set(re.findall(r"^local function (\w+)\(", top, re.MULTILINE))
    assert not defined & (cold - hot), f"{script}: {defined & (cold - hot)} defined on every call"


@pytest.mark.parametrize("module", MODULES)
def test_a_module_names_only_its_own_functions_cold(module: str) -> None:
    from orchestrator.store.cold import cold_names

    functions, _ = top_level(module)
    assert cold_names(module_source(module)) <= functions
