"""``Settings``: plain-text variables taken as they are, the rest checked by pydantic-settings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.settings import Settings


@pytest.fixture(autouse=True)
def no_orch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.lower().startswith("orch_")]:
        monkeypatch.delenv(key)


def test_plain_text_variables_are_read_without_loading_pydantic() -> None:
    probe = (
        "import sys\n"
        "from orchestrator.settings import Settings\n"
        "s = Settings()\n"
        "print(s.redis_url, s.data_dir, s.key_prefix, s.run_ttl)\n"
        "print(sorted(m for m in sys.modules if m.startswith('pydantic')))"
    )
    env = {
        "PATH": "",
        "ORCH_REDIS_URL": "redis://h:1/0",
        "orch_data_dir": "/d",
        "ORCH_KEY_PREFIX": "x:",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["redis://h:1/0 /d x: 604800", "[]"]


def test_plain_and_checked_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_REDIS_URL", "redis://h:1/0")
    monkeypatch.setenv("ORCH_DATA_DIR", "/data")
    plain = Settings()
    checked = Settings(key_prefix="orch:")  # a keyword always goes through pydantic-settings
    assert plain == checked
    assert plain.data_dir == Path("/data") and plain.redis_url == "redis://h:1/0"


def test_variables_that_need_converting_are_converted_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCH_RUN_TTL", "5")
    monkeypatch.setenv("orch_allow_eviction", "1")
    monkeypatch.setenv("ORCH_NOT_A_KNOB", "ignored")
    settings = Settings()
    assert (settings.run_ttl, settings.allow_eviction) == (5, True)
    monkeypatch.setenv("ORCH_CONNECT_TIMEOUT", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.title == "Settings"  # what the CLI's one-line error looks for
    assert caught.value.errors()[0]["loc"] == ("connect_timeout",)


def test_keywords_are_checked_and_tokens_stay_out_of_repr() -> None:
    with pytest.raises(ValidationError):
        Settings(import_check="sometimes")
    settings = Settings(api_tokens="s3cret, other")
    assert settings.api_token_list == ("s3cret", "other")
    assert "s3cret" not in repr(settings)
    assert dataclasses.replace(settings, metrics_port=9100).metrics_port == 9100
