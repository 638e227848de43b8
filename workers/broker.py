"""The workers' broker transport: kombu's Redis transport, riding through a Redis
that crashed or ran out of memory instead of ending the worker.

kombu's bookkeeping writes could end a worker's main process with
"Unrecoverable error": recording a message it handed out (``unacked``) or
acknowledging one when Redis is out of memory (``OutOfMemoryError``), giving
a rejected or timed-out message back to its queue then, and giving its
unacknowledged messages back while closing a connection Redis already
dropped (``AttributeError`` inside kombu). None of
them is needed for a step to be safe: the engine records every run in its
own keys, and a message lost here is sent again by the reconciler
(``workers.upkeeping``, ``ORCH_REDISPATCH_AFTER``). So each is tried, and
when it fails the worker says so in one line and goes on.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger("orchestrator.worker")

#: What a bookkeeping write may meet: a full Redis, a dead connection, kombu's
#: own AttributeError on a connection already torn down.
_RIDDEN = (redis.exceptions.OutOfMemoryError, redis.ConnectionError, redis.TimeoutError,
           AttributeError)  # fmt: skip


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: Any) -> None:
        try:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]
        except redis.exceptions.OutOfMemoryError as exc:
            # Run the step anyway: only a crash-restore record is missing.
            log.warning("Redis is out of memory: message %s runs unrecorded (%s)",
                        delivery_tag, exc)  # fmt: skip
            virtual.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]

    def ack(self, delivery_tag: Any) -> None:
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except _RIDDEN as exc:
            # Its record stays in ``unacked``; should kombu hand it out again after the
            # visibility timeout, the claim finds the step done and runs nothing.
            log.warning("could not acknowledge message %s (%r)", delivery_tag, exc)
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().restore_visible(*args, **kwargs)  # type: ignore[no-untyped-call]
        except _RIDDEN as exc:
            log.warning("could not give timed-out messages back (%r); trying again later", exc)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        except _RIDDEN as exc:
            log.warning("could not give message %s back (%r): the reconciler sends its step "
                        "again", delivery_tag, exc)  # fmt: skip
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]

    def restore_unacked(self, client: Any = None) -> None:
        try:
            super().restore_unacked(client)  # type: ignore[no-untyped-call]
        except _RIDDEN as exc:
            log.warning("could not give %d unacknowledged message(s) back while closing a "
                        "dead connection (%r): the reconciler sends their steps again",
                        len(self._delivered), exc)  # fmt: skip
            self._delivered.clear()


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    Channel = Channel
