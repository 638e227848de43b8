"""The plain-Celery side of the benchmark: what a Celery user writes today.

Same broker, same serializer, same worker settings as the orchestrator's
workers, with the Redis result backend on, because that is how chains and
chords are run in practice (chords require it).
"""

from __future__ import annotations

import os
import time

from celery import Celery


def create_app() -> Celery:
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    app = Celery("bench_plain", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="plain",
        worker_hijack_root_logger=False,
        # kombu's Redis priorities, as a Celery user sets them up (0 is the highest there).
        broker_transport_options={
            "priority_steps": list(range(10)),
            "queue_order_strategy": "priority",
        },
    )

    @app.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop(*_: object) -> int:
        return 1

    @app.task(name="bench.sleep")  # type: ignore[untyped-decorator]
    def sleep(*_: object, seconds: float = 0.0) -> int:
        time.sleep(seconds)
        return 1

    @app.task(name="bench.stamp")  # type: ignore[untyped-decorator]
    def stamp(tag: str) -> int:
        """Note when a priority probe started (scenario q)."""
        import redis

        redis.Redis.from_url(url).set(f"bench:stamp:{tag}", f"{time.time():.6f}", ex=600)
        return 1

    return app


def __getattr__(name: str) -> Celery:
    if name == "app":
        return create_app()
    raise AttributeError(name)
