"""The engine tier: the Lua scripts driven through RunStore, on a real redis-server, no Celery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.embedded import EmbeddedRedis
from tests.engine.helpers import Rig


@pytest.fixture
def rig(redis_server: EmbeddedRedis) -> Iterator[Rig]:
    """A fresh prefix and queue; no test may leave a refused transition behind."""
    rig = Rig(redis_server.url)
    yield rig
    illegal = rig.reads.illegal_transitions()
    rig.close()
    assert illegal == {}, f"the engine refused transitions: {illegal}"
