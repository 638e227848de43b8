"""Redis out of memory (``maxmemory`` reached, ``noeviction``): refused, typed, ridden out.

A submit is refused with ``RedisOutOfMemoryError`` (``orch``: one line, exit
3) and writes nothing. Workers stay up: a script Redis refuses for want of
memory wrote nothing and is tried again until memory frees, kombu's
bookkeeping writes that Redis refuses do not end the worker's main process
(a message they could not record is sent again by the reconciler), and runs
accepted before the memory ran out finish once it frees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection

from orchestrator import Flow
from orchestrator.embedded import EmbeddedRedis
from orchestrator.errors import RedisOutOfMemoryError
from tests.faults.test_faults import FaultEnv, fault_env
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultEnv]:
    with fault_env(
        tmp_path,
        monkeypatch,
        "full",
        processes=1,
        concurrency=2,
        lease=10.0,
        env={"ORCH_REDISPATCH_AFTER": "3"},
    ) as env:
        yield env


def run_out_of_memory(r: redis.Redis) -> None:
    """Set maxmemory below what Redis uses: every write that needs memory is refused."""
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", str(used // 2))
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("test:probe", "x")


def free_memory(r: redis.Redis) -> None:
    r.config_set("maxmemory", "0")


def test_a_full_redis_refuses_submits_with_a_typed_error_and_runs_in_flight_finish(
    env: FaultEnv,
) -> None:
    flow = Flow(f"full-{uuid.uuid4().hex[:8]}", 1)
    flow.step("a", "tests.steps.basic:sleepy", queue=env.queue)
    flow.step("b", "tests.steps.basic:emit", after=["a"], queue=env.queue)
    wf = flow.build()
    run = env.client.submit(wf, {"delay": 1.5, "value": 5})
    # Once a's body has noted its start (a write of its own, which a full Redis would refuse).
    wait_until(lambda: env.r.llen(f"test:order:{run.id}") > 0, timeout=WAIT)
    run_out_of_memory(env.r)
    try:
        with pytest.raises(RedisOutOfMemoryError, match="out of memory"):
            env.client.submit(wf, {"delay": 0, "value": 6})
        cli = subprocess.run(
            [sys.executable, "-m", "orchestrator", "submit", wf.ref, "--input", "{}"],
            capture_output=True, text=True, env=dict(os.environ), cwd=ROOT, timeout=60,
            check=False,
        )  # fmt: skip
        assert cli.returncode == 3, (cli.stdout, cli.stderr)
        lines = [line for line in cli.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "out of memory" in lines[0], cli.stderr
        time.sleep(3.0)  # a's body ends meanwhile; what it leads to waits for memory
        assert all(w.process.poll() is None for w in env.pool.workers), "a worker quit"
        assert run.status()["state"] == "RUNNING", run.events()
    finally:
        free_memory(env.r)

    doc = env.wait(run, timeout=WAIT)
    assert doc["state"] == "SUCCEEDED", doc["error"]
    assert doc["result"] == 5
    assert doc["steps"]["a"]["attempts"] == 1, run.events()
    assert len(env.client.runs(limit=10)) == 1, "a refused submit left a run behind"
    assert all(w.process.poll() is None for w in env.pool.workers), "a worker quit"
    again = env.client.submit(wf, {"delay": 0, "value": 7})
    assert env.wait(again, timeout=WAIT)["result"] == 7


def test_the_workers_transport_hands_out_a_message_redis_cannot_record(tmp_path: Path) -> None:
    """kombu records each message it hands out (``unacked``): with Redis full that write
    is refused. The workers' transport runs the message anyway (kombu's own raises, which
    ends a worker's main process), and closing a dead connection does not raise either."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    r = redis.Redis.from_url(url)
    message = {
        "body": "W10=", "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {},
        "properties": {
            "delivery_tag": "t1", "delivery_info": {"exchange": "", "routing_key": "q"},
            "body_encoding": "base64", "delivery_mode": 2, "priority": 0,
        },
    }  # fmt: skip
    try:
        r.lpush("q", json.dumps(message))
        run_out_of_memory(r)
        conn = Connection(url, transport="workers.broker:Transport")
        channel = conn.channel()
        got = channel.basic_get("q", no_ack=False)
        assert got is not None and got.delivery_tag == "t1"
        free_memory(r)
        r.lpush("q", json.dumps({**message, "properties": {**message["properties"],
                                                           "delivery_tag": "t2"}}))  # fmt: skip
        assert channel.basic_get("q", no_ack=False).delivery_tag == "t2"
        assert r.hkeys("unacked") == [b"t2"]
        server.kill()
        conn.release()  # gives t1 and t2 back: Redis is gone, and the worker goes on
    finally:
        r.close()
        server.stop()
