"""The HTTP API's submits, made on one thread and sent to Redis together.

On the event loop a submit would stop the server for its Redis round trip; on
the thread pool every request pays a thread hop, which cost more server CPU
than the submit itself (docs/BENCHMARKS.md). Here a request only queues its
submit and awaits it: one thread takes every submit waiting, checks each
(``submission.prepare``), sends their script calls in one pipeline (one round
trip, not one each; each call is its own script, so each is as atomic as
alone), reads each reply (``submission.finish``) and hands the results back to
the loop at once. Under load the batches grow by themselves; alone, a submit
is a batch of one. The thread stops when idle and starts again on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator import submission
from orchestrator.checks import reachable

if TYPE_CHECKING:
    from orchestrator.client import Client
    from orchestrator.runs import Run
    from orchestrator.spec import Workflow

#: Seconds the thread waits for work before it stops.
IDLE_STOP = 5.0


@dataclass
class _Job:
    wf: Workflow
    value: dict[str, Any]
    options: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Run]
    result: Run | BaseException | None = field(default=None)


class SubmitBatcher:
    """Submits of one client, made on one thread, their script calls pipelined."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._waiting: list[_Job] = []
        self._cond = threading.Condition()
        self._running = False

    async def submit(self, wf: Workflow, value: dict[str, Any], **options: Any) -> Run:
        """``Client.submit(wf, value, **options)``, made on the batching thread."""
        loop = asyncio.get_running_loop()
        job = _Job(wf, value, options, loop, loop.create_future())
        with self._cond:
            self._waiting.append(job)
            if not self._running:
                self._running = True
                threading.Thread(target=self._work, name="orch-submits", daemon=True).start()
            elif len(self._waiting) == 1:
                self._cond.notify()
        return await job.future

    def _work(self) -> None:
        try:
            while True:
                with self._cond:
                    if not self._waiting:
                        self._cond.wait(IDLE_STOP)
                    if not self._waiting:
                        self._running = False  # under the lock: the next submit starts one
                        return
                    batch, self._waiting = self._waiting, []
                self._run(batch)
                for loop in {job.loop for job in batch}:
                    mine = [job for job in batch if job.loop is loop]
                    with contextlib.suppress(RuntimeError):  # that loop has closed
                        loop.call_soon_threadsafe(_deliver, mine)
        except BaseException:
            with self._cond:
                self._running = False
            raise

    def _run(self, batch: list[_Job]) -> None:
        client = self.client
        ready: list[tuple[_Job, submission.Pending]] = []
        for job in batch:
            try:
                with reachable(client.url):
                    ready.append(
                        (job, submission.prepare(client, job.wf, job.value, **job.options))
                    )
            except Exception as exc:
                job.result = exc
        try:
            replied = self._send(ready)
        except Exception as exc:
            for job, _ in ready:
                job.result = exc
            return
        for (job, pending), outcome in zip(ready, replied, strict=True):
            try:
                with reachable(client.url):
                    if isinstance(outcome, Exception):
                        raise outcome
                    job.result = submission.finish(client, pending, outcome)
            except Exception as exc:
                job.result = exc

    def _send(self, ready: list[tuple[_Job, submission.Pending]]) -> list[Any]:
        """Every ready submit's script call in one pipeline: its outcome, or its error."""
        import redis  # noqa: PLC0415

        from orchestrator.store import replies  # noqa: PLC0415

        if not ready:
            return []
        engine = self.client.store.engine
        out: list[Any] = []
        with reachable(self.client.url):
            pipe = self.client.redis.pipeline(transaction=False)
            for _, pending in ready:
                engine.queue(pipe, *submission.call_args(self.client, pending))
            raw = pipe.execute(raise_on_error=False)
            for (_, pending), reply in zip(ready, raw, strict=True):
                if isinstance(reply, redis.exceptions.NoScriptError):  # Redis lost its scripts
                    out.append(submission.send(self.client, pending, pending.plan))
                elif isinstance(reply, Exception):
                    out.append(reply)
                else:
                    out.append(replies.submit(reply))
        return out


def _deliver(jobs: list[_Job]) -> None:
    """On the loop: each request's run, or its error."""
    for job in jobs:
        if job.future.cancelled():
            continue
        if isinstance(job.result, BaseException):
            job.future.set_exception(job.result)
        else:
            job.future.set_result(job.result)  # type: ignore[arg-type]
