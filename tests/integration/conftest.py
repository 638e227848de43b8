"""Fixtures of the integration tier (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.integration.helpers import DoneListener


@pytest.fixture
def done(r: redis.Redis) -> Iterator[DoneListener]:
    """End-of-run notifications published while the test runs."""
    listener = DoneListener(r)
    yield listener
    listener.close()
