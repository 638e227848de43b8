"""The one settings object; every knob is an ``ORCH_*`` environment variable.

``Settings`` names each knob once, as a field of a frozen dataclass: its type,
its default, and (in the field's metadata) its description and bounds.
pydantic-settings reads and validates the environment against it: from those
fields ``_model`` makes a ``BaseSettings`` model, named ``Settings`` so that its
errors read as ever.

Why not subclass ``BaseSettings`` directly: importing pydantic-settings and
pydantic costs more than everything else ``orch status`` and ``orch runs`` do
(docs/BENCHMARKS.md). So when no keyword is given and every ``ORCH_*`` variable
set is plain text (a string or a path: ``ORCH_REDIS_URL``, ``ORCH_DATA_DIR``, the
usual case), there is nothing to convert or check and ``Settings()`` takes them
as they are; any other variable, or any keyword, goes through pydantic-settings.

Nothing reads the environment at import time: callers build ``Settings()``
when they need it, so tests and embedded servers can point a process at a
different Redis by changing the environment before construction.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

DEFAULT_DATA_DIR = Path(".orch")

#: The prefix of every variable, matched without regard to case (as pydantic-settings does).
ENV_PREFIX = "ORCH_"


def _about(description: str, **bounds: float) -> dict[str, Any]:
    """A field's metadata: what pydantic needs to describe and check it."""
    return {"description": description, **bounds}


@dataclasses.dataclass(frozen=True, init=False)
class Settings:
    """Configuration shared by the client, the CLI and the workers.

    ``Settings(**overrides)`` reads the environment; keywords take precedence and
    are validated like the variables.
    """

    redis_url: str | None = field(
        default=None,
        metadata=_about("Redis for state and broker; unset means the embedded server in data_dir."),
    )
    data_dir: Path = field(
        default=DEFAULT_DATA_DIR,
        metadata=_about("Where the embedded Redis keeps its AOF and pid files."),
    )
    max_payload_bytes: int = field(
        default=1024 * 1024, metadata=_about("Cap on one step output or run input, in bytes.", gt=0)
    )
    run_ttl: int = field(
        default=7 * 24 * 3600, metadata=_about("Seconds a finished run's keys are kept.", gt=0)
    )
    key_prefix: str = field(default="orch:", metadata=_about("Prefix of every orchestrator key."))
    default_queue: str = field(
        default="orch", metadata=_about("Celery queue of steps that name none.")
    )
    visibility_timeout: int = field(
        default=3600,
        metadata=_about("Seconds before Redis redelivers an unacknowledged step.", gt=0),
    )
    lease_seconds: float = field(
        default=10.0,
        metadata=_about(
            "A running attempt not heard from for this long is presumed lost and retried "
            "(renewed every third of it while the step runs).",
            gt=0,
        ),
    )
    redispatch_after: float = field(
        default=30.0,
        metadata=_about(
            "Seconds a run may sit with queued work, no live attempt, no delayed "
            "retry and no message before the workers send its messages again.",
            gt=0,
        ),
    )
    runner_slice: float = field(
        default=1.0,
        metadata=_about(
            "Seconds a worker may go on running a run's next steps from one message; "
            "0 sends every step as its own message.",
            ge=0,
        ),
    )
    connect_timeout: float = field(
        default=3.0,
        metadata=_about("Seconds to wait for Redis before reporting it unreachable.", gt=0),
    )
    allow_eviction: bool = field(
        default=False,
        metadata=_about(
            "Accept a Redis whose maxmemory-policy may evict keys (runs can then "
            "vanish without a word); refused by default.",
        ),
    )
    task_modules: str = field(
        default="",
        metadata=_about(
            "Comma-separated module prefixes a spec's task, compensate, fallback and "
            "when may name; checked before anything is imported. Empty: any module, but "
            "only @step functions.",
        ),
    )
    worker_concurrency: int = field(
        default=2, metadata=_about("Processes per `orch dev` pool.", gt=0)
    )
    hooks: str = field(
        default="",
        metadata=_about(
            "Engine hooks to install on producers and workers: comma-separated "
            "module:attr, each a Hooks subclass (instantiated with no arguments) or an instance.",
        ),
    )
    metrics_port: int | None = field(
        default=None,
        metadata=_about(
            "Port of the Prometheus scrape endpoint (the scorecard) a worker serves.",
            ge=1,
            le=65535,
        ),
    )
    import_check: Literal["strict", "warn", "off"] = field(
        default="strict",
        metadata=_about(
            "`orch worker` start-up import check: strict refuses to start (exit 2), "
            "warn logs each workflow version it cannot import and starts, off skips the check.",
        ),
    )
    # Kept out of repr (and so out of logs and tracebacks), as pydantic's SecretStr did.
    api_tokens: str = dataclasses.field(
        default="",
        repr=False,
        metadata={
            "description": "Comma-separated bearer tokens the HTTP API (`orch serve`) accepts; "
            "required to bind beyond loopback. Empty: no token asked (loopback only)."
        },
    )
    api_cors_origins: str = field(
        default="",
        metadata=_about(
            "Comma-separated origins the HTTP API allows cross-origin (CORS); empty: CORS off.",
        ),
    )

    def __init__(self, **overrides: Any) -> None:
        values = _from_plain_env() if not overrides else None
        if values is None:
            values = _model()(**overrides).model_dump()
        for knob in dataclasses.fields(self):
            object.__setattr__(self, knob.name, values.get(knob.name, knob.default))

    @property
    def task_module_prefixes(self) -> tuple[str, ...]:
        """``task_modules`` as a tuple of prefixes; empty allows every module."""
        return tuple(p.strip() for p in self.task_modules.split(",") if p.strip())

    @property
    def api_token_list(self) -> tuple[str, ...]:
        """``api_tokens`` split; empty when the API asks for no token."""
        return tuple(t.strip() for t in self.api_tokens.split(",") if t.strip())


#: Types whose variables need no conversion: the text as it is (a path made of it).
_PLAIN: dict[object, type] = {str: str, str | None: str, Path: Path}


@functools.cache
def _types() -> dict[str, Any]:
    return typing.get_type_hints(Settings)


def _from_plain_env() -> dict[str, Any] | None:
    """The ``ORCH_*`` variables set, when all are plain text; None when any needs checking."""
    types, values = _types(), {}
    for key, text in os.environ.items():
        name = key.lower().removeprefix(ENV_PREFIX.lower())
        if name == key.lower() or name not in types:
            continue  # not ours, or no knob (ignored, like pydantic-settings' extra="ignore")
        plain = _PLAIN.get(types[name])
        if plain is None:
            return None
        values[name] = plain(text)
    return values


@functools.cache
def _model() -> type[BaseSettings]:
    """The pydantic-settings model of ``Settings``' fields, made on first need."""
    from pydantic import Field, create_model  # noqa: PLC0415
    from pydantic_settings import BaseSettings, SettingsConfigDict  # noqa: PLC0415

    class FromEnv(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    fields: dict[str, Any] = {
        f.name: (_types()[f.name], Field(default=f.default, **f.metadata))
        for f in dataclasses.fields(Settings)
    }
    return create_model("Settings", __base__=FromEnv, **fields)
