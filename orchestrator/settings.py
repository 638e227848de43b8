"""The one settings object; every knob is an ``ORCH_*`` environment variable.

Nothing reads the environment at import time: callers build ``Settings()``
when they need it, so tests and embedded servers can point a process at a
different Redis by changing the environment before construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by the client, the CLI and the workers."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Redis for state and broker; unset means the embedded server in data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".orch"), description="Where the embedded Redis keeps its AOF and pid files."
    )
    max_payload_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Cap on one step output or run input, in bytes."
    )
    run_ttl: int = Field(
        default=7 * 24 * 3600, gt=0, description="Seconds a finished run's keys are kept."
    )
    key_prefix: str = Field(default="orch:", description="Prefix of every orchestrator key.")
    default_queue: str = Field(default="orch", description="Celery queue of steps that name none.")
    visibility_timeout: int = Field(
        default=3600, gt=0, description="Seconds before Redis redelivers an unacknowledged step."
    )
    lease_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A running attempt not heard from for this long is presumed lost and retried "
        "(renewed every third of it while the step runs).",
    )
    redispatch_after: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a run may sit with queued work, no live attempt, no delayed "
        "retry and no message before the workers send its messages again.",
    )
    runner_slice: float = Field(
        default=1.0,
        ge=0,
        description="Seconds a worker may go on running a run's next steps from one message; "
        "0 sends every step as its own message.",
    )
    connect_timeout: float = Field(
        default=3.0, gt=0, description="Seconds to wait for Redis before reporting it unreachable."
    )
    allow_eviction: bool = Field(
        default=False,
        description="Accept a Redis whose maxmemory-policy may evict keys (runs can then "
        "vanish without a word); refused by default.",
    )
    task_modules: str = Field(
        default="",
        description="Comma-separated module prefixes a spec's task, compensate, fallback and "
        "when may name; checked before anything is imported. Empty: any module, but "
        "only @step functions.",
    )
    worker_concurrency: int = Field(default=2, gt=0, description="Processes per `orch dev` pool.")
    hooks: str = Field(
        default="",
        description="Engine hooks to install on producers and workers: comma-separated "
        "module:attr, each a Hooks subclass (instantiated with no arguments) or an instance.",
    )

    @property
    def task_module_prefixes(self) -> tuple[str, ...]:
        """``task_modules`` as a tuple of prefixes; empty allows every module."""
        return tuple(p.strip() for p in self.task_modules.split(",") if p.strip())

    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the Prometheus scrape endpoint (the scorecard) a worker serves.",
    )
    import_check: Literal["strict", "warn", "off"] = Field(
        default="strict",
        description="`orch worker` start-up import check: strict refuses to start (exit 2), "
        "warn logs each workflow version it cannot import and starts, off skips the check.",
    )
    api_tokens: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated bearer tokens the HTTP API (`orch serve`) accepts; "
        "required to bind beyond loopback. Empty: no token asked (loopback only).",
    )
    api_cors_origins: str = Field(
        default="",
        description="Comma-separated origins the HTTP API allows cross-origin (CORS); "
        "empty: CORS off.",
    )

    @property
    def api_token_list(self) -> tuple[str, ...]:
        """``api_tokens`` split; empty when the API asks for no token."""
        raw = self.api_tokens.get_secret_value()
        return tuple(t.strip() for t in raw.split(",") if t.strip())
