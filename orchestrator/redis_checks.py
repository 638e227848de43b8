"""Refusing a Redis that may evict keys.

Under ``maxmemory`` with an evicting ``maxmemory-policy`` (``allkeys-lru``,
``volatile-ttl``, ...), Redis drops keys to make room: an accepted run, its
workflow and its plan can vanish without a word, and nothing is left to report
it as stuck. Only ``noeviction`` makes a full Redis refuse writes instead, which
callers see. So every entry point (client, ``orch dev``, workers at start)
checks the policy through ``connection.connect`` and refuses any other, unless
``ORCH_ALLOW_EVICTION`` accepts the risk.

Managed services often rename or deny ``CONFIG``; there the policy cannot be
read, and start-up goes on with a warning, logged once per process and server.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from orchestrator.errors import RedisPolicyError
from orchestrator.redis_errors import response_errors
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.leanredis import Conn

log = logging.getLogger("orchestrator.redis")

SAFE_POLICY = "noeviction"

#: Who checks: named in the refusal, so the line says what refused to start.
Checker = Literal["client", "dev", "worker"]
_SUBJECT: dict[str, str] = {
    "client": "the client refuses it",
    "dev": "orch dev refuses it",
    "worker": "the worker refuses to start",
}

#: (server, what) pairs already warned about in this process: one warning each.
_warned: set[tuple[str, str]] = set()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def eviction_policy(client: Conn) -> str | None:
    """The server's ``maxmemory-policy``, or None when ``CONFIG`` is renamed or denied."""
    try:
        reply = client.config_get("maxmemory-policy")
    except response_errors():  # unknown command (renamed) or NOPERM (ACL)
        return None
    found = {_text(k): _text(v) for k, v in dict(reply).items()}
    return found.get("maxmemory-policy")


def check_eviction_policy(
    client: Conn, where: str, settings: Settings, *, who: Checker
) -> str | None:
    """Raise ``RedisPolicyError`` unless the server at ``where`` never evicts.

    Returns the policy read (None when it cannot be read: then a warning is
    logged once). ``where`` is the server's address with no password.
    """
    policy = eviction_policy(client)
    if policy is None:
        _warn_once(
            where,
            "policy-unknown",
            f"cannot read maxmemory-policy of Redis at {where} (CONFIG is renamed or denied): "
            f"make sure it is {SAFE_POLICY}, or accepted runs may be evicted without a word",
        )
        return None
    if policy == SAFE_POLICY:
        return policy
    if settings.allow_eviction:
        _warn_once(
            where,
            f"allowed-{policy}",
            f"Redis at {where} has maxmemory-policy {policy} and ORCH_ALLOW_EVICTION is set: "
            "when memory runs out, runs, workflows and plans are evicted without a word",
        )
        return policy
    raise RedisPolicyError(
        f"Redis at {where} has maxmemory-policy {policy}, so {_SUBJECT[who]}: under memory "
        "pressure it would evict accepted runs, their workflows and plans without a word; "
        f"set `maxmemory-policy {SAFE_POLICY}` (or ORCH_ALLOW_EVICTION=1 to accept that risk)"
    )


def _warn_once(where: str, what: str, message: str) -> None:
    if (where, what) in _warned:
        return
    _warned.add((where, what))
    log.warning(message)
