"""Every Redis key the orchestrator uses, named in one place.

Layout (``P`` is ``ORCH_KEY_PREFIX``, default ``orch:``)::

    P wf:{name}                 HASH  version -> canonical spec JSON (immutable)
    P plan:{name}:{version}     HASH  step -> compiled step JSON; "__meta__" -> plan JSON
    P queues                    SET   Celery queues named by registered workflows
    P run:{id}                  HASH  run fields and "{step}.{field}" step fields
    P run:{id}:events           LIST  event history, one JSON object per transition
    P run:{id}:items:{step}     HASH  element index -> JSON, for a step something maps over
    P run:{id}:parts:{step}     HASH  o{i} outputs, t{i} tokens, a{i} attempts of a map step
    P key:{workflow}:{key}      STRING run id submitted under an idempotency key
    P runs                      ZSET  run id scored by creation time (listing)
    P delayed                   ZSET  step messages waiting for a retry, scored by due time
    P timeouts                  ZSET  "{run}|{step}" of waiting steps, scored by their deadline
    P leases                    ZSET  "{run}|{step}|{index}|{token}" of running attempts, scored
                                      by lease expiry; heart-beaten while the attempt runs
    P stats:{name}:{version}    HASH  counters: handoff ok/bad per edge
    P stats:{name}:{version}:edges SET "{upstream}>{step}" edges some run took (branch coverage)
    P stats:illegal             HASH  "{from}>{to}" -> refused transitions
    P dep:{name}:bucket         HASH  token bucket of a dependency's rate limit (tokens, ts)
    P dep:{name}:slots          ZSET  attempt tokens holding a concurrency slot, by lease expiry
    P dep:{name}:breaker        HASH  circuit breaker: state, until, probe
    P dep:{name}:{kind}         ZSET  calls in the last 10 s by kind (first, retry, ok, fail)
    P done:{id}                 PUBSUB channel told when the run ends
    P worker:{hostname}         STRING queues of a live worker; expires 10 s after its last beat
    P capacity:{queue}          ZSET  "{hostname}|{concurrency}" of live workers consuming the
                                      queue, scored by when their last beat runs out
    P run:{id}:ready:{queue}    LIST  "{step}" or "{step}|{element}" attempts made ready for
                                      the run's runners on that queue (see claiming.lua)
    P contract:{name}:{version} HASH  step -> its parameters' JSON Schemas; "__hash__" -> the
                                      content hash they were taken from (see contracts.py)

Celery's own queue lists (named by the queue) are kombu's and are written by
the dispatch scripts in kombu's Redis wire format (see ``messages``).
Every key of a finished run expires after ``ORCH_RUN_TTL``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "orch:"

    def workflow(self, name: str) -> str:
        return f"{self.prefix}wf:{name}"

    def plan(self, ref: str) -> str:
        return f"{self.prefix}plan:{ref}"

    @property
    def queues(self) -> str:
        return f"{self.prefix}queues"

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def events(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}:events"

    def idempotency(self, workflow: str, key: str) -> str:
        return f"{self.prefix}key:{workflow}:{key}"

    @property
    def runs(self) -> str:
        return f"{self.prefix}runs"

    @property
    def timeouts(self) -> str:
        return f"{self.prefix}timeouts"

    @property
    def leases(self) -> str:
        return f"{self.prefix}leases"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}delayed"

    def stats(self, ref: str) -> str:
        return f"{self.prefix}stats:{ref}"

    @property
    def illegal(self) -> str:
        return f"{self.prefix}stats:illegal"

    def worker(self, hostname: str) -> str:
        return f"{self.prefix}worker:{hostname}"

    def capacity(self, queue: str) -> str:
        return f"{self.prefix}capacity:{queue}"

    def ready(self, run_id: str, queue: str) -> str:
        return f"{self.prefix}run:{run_id}:ready:{queue}"

    def contract(self, ref: str) -> str:
        return f"{self.prefix}contract:{ref}"

    def done_channel(self, run_id: str) -> str:
        return f"{self.prefix}done:{run_id}"
