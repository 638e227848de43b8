"""Fixtures of the integration tier (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from orchestrator import Client
from tests.integration.helpers import DoneListener


@pytest.fixture
def done(r: redis.Redis) -> Iterator[DoneListener]:
    """End-of-run notifications published while the test runs."""
    listener = DoneListener(r)
    yield listener
    listener.close()


@pytest.fixture
def illegal(client: Client) -> Iterator[None]:
    """The illegal-transition counter is the same after the test as before it."""
    before = client.store.reads.illegal_transitions()
    yield
    assert client.store.reads.illegal_transitions() == before
