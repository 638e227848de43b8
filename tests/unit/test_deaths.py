"""ChildWatch: which pool children died since the last tick, each reported once."""

from __future__ import annotations

import os
from typing import Any

from workers.deaths import ChildWatch

NO_SUCH_PID = 4_000_000  # above Linux's pid_max: never a live process


class Pool:
    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    @property
    def info(self) -> dict[str, Any]:
        return {"processes": list(self.pids)}


def test_a_child_gone_from_the_pool_is_reported_once() -> None:
    pool = Pool([os.getpid(), os.getppid()])
    watch = ChildWatch(pool)
    assert watch.gone() == []
    pool.pids = [os.getpid()]
    assert watch.gone() == [os.getppid()]
    assert watch.gone() == []


def test_a_dead_child_still_listed_is_reported_at_once_and_not_again_when_dropped() -> None:
    pool = Pool([os.getpid()])
    watch = ChildWatch(pool)
    pool.pids = [os.getpid(), NO_SUCH_PID]  # listed, but no such process: exited
    assert watch.gone() == [NO_SUCH_PID]
    assert watch.gone() == []
    pool.pids = [os.getpid()]  # the pool reaps it at last
    assert watch.gone() == []


def test_a_pool_without_processes_reports_nothing() -> None:
    watch = ChildWatch(None)
    assert watch.gone() == []
