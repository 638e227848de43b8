"""LeanRedis, the quick commands' client, against a real redis-server and redis-py.

Every command it has must answer as redis-py's does (the readers take either
client), and failures must keep the full client's meaning: exit 3 for an
unreachable server within the timeout, one more try on a dropped connection.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator import Client, Flow, ReadOnlyClientError
from orchestrator.connection import check_url, connect_reads
from orchestrator.embedded import EmbeddedRedis, free_port, redis_binary
from orchestrator.errors import OrchestratorError, RedisPolicyError, RedisUnavailableError
from orchestrator.leanredis import LeanRedis
from orchestrator.redis_errors import ResponseError, response_errors
from orchestrator.settings import Settings

pytestmark = pytest.mark.integration


def lean(url: str, timeout: float = 2.0) -> LeanRedis:
    found = LeanRedis.from_url(url, timeout=timeout, where=url)
    assert found is not None
    return found


@pytest.fixture
def both(redis_server: EmbeddedRedis) -> Iterator[tuple[LeanRedis, redis.Redis]]:
    full = redis.Redis.from_url(redis_server.url)
    mine = lean(redis_server.url)
    yield mine, full
    mine.close()
    full.close()


@pytest.fixture
def data(both: tuple[LeanRedis, redis.Redis], wf_name: str) -> str:
    """A prefix under which each Redis type holds something."""
    _, full = both
    p = f"lean:{wf_name}:"
    full.hset(f"{p}h", mapping={"a": "1", "b": b"\x00\xff", "c": ""})
    full.rpush(f"{p}l", "x", "y", "z")
    full.sadd(f"{p}s", "m", "n")
    full.zadd(f"{p}z", {"one": 1, "two": 2.5, "three": 3})
    full.set(f"{p}k", "v")
    for i in range(30):
        full.set(f"{p}many:{i}", i)
    return p


COMMANDS: list[tuple[str, Callable[[Any, str], Any]]] = [
    ("hgetall", lambda c, p: c.hgetall(f"{p}h")),
    ("hgetall of nothing", lambda c, p: c.hgetall(f"{p}none")),
    ("hget", lambda c, p: c.hget(f"{p}h", "b")),
    ("hget missing", lambda c, p: c.hget(f"{p}h", "zz")),
    ("hmget", lambda c, p: c.hmget(f"{p}h", ["a", "zz", "c"])),
    ("hkeys", lambda c, p: sorted(c.hkeys(f"{p}h"))),
    ("exists", lambda c, p: c.exists(f"{p}h", f"{p}l", f"{p}none")),
    ("get", lambda c, p: c.get(f"{p}k")),
    ("llen", lambda c, p: c.llen(f"{p}l")),
    ("lindex", lambda c, p: c.lindex(f"{p}l", -1)),
    ("lrange", lambda c, p: c.lrange(f"{p}l", -2, -1)),
    ("smembers", lambda c, p: c.smembers(f"{p}s")),
    ("zcard", lambda c, p: c.zcard(f"{p}z")),
    ("zcount", lambda c, p: c.zcount(f"{p}z", "(1", "+inf")),
    ("zrange", lambda c, p: c.zrange(f"{p}z", 0, -1)),
    ("zrange withscores", lambda c, p: c.zrange(f"{p}z", 0, 1, withscores=True)),
    ("zrevrange", lambda c, p: c.zrevrange(f"{p}z", 0, 1)),
    ("zrangebyscore", lambda c, p: c.zrangebyscore(f"{p}z", 2, "+inf")),
    ("ping", lambda c, p: c.ping()),
    ("config_get", lambda c, p: c.config_get("maxmemory-policy")),
    ("scan_iter", lambda c, p: sorted(c.scan_iter(match=f"{p}many:*", count=7))),
    ("zscan_iter", lambda c, p: sorted(c.zscan_iter(f"{p}z", match="t*"))),
]


@pytest.mark.parametrize("name, command", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_each_command_answers_as_redis_py_does(
    both: tuple[LeanRedis, redis.Redis], data: str, name: str, command: Callable[[Any, str], Any]
) -> None:
    mine, full = both
    assert command(mine, data) == command(full, data)


def test_a_pipeline_answers_as_redis_py_does(
    both: tuple[LeanRedis, redis.Redis], data: str
) -> None:
    def batch(conn: Any) -> list[Any]:
        with conn.pipeline(transaction=False) as pipe:
            pipe.hgetall(f"{data}h")
            pipe.zcount(f"{data}z", 0, 2)
            pipe.smembers(f"{data}s")
            pipe.hgetall(f"{data}none")
            return list(pipe.execute())

    mine, full = both
    assert batch(mine) == batch(full)
    assert mine.pipeline().execute() == []


def test_writes_it_has_answer_as_redis_py_does(
    both: tuple[LeanRedis, redis.Redis], wf_name: str
) -> None:
    mine, full = both
    key = f"lean:{wf_name}:w"
    assert mine.set(key, "first", nx=True) is True
    assert mine.set(key, "second", nx=True) is False
    assert full.get(key) == b"first"
    assert mine.sadd(f"{key}:s", "a", "b") == 2
    assert mine.sadd(f"{key}:s", "a") == 0
    seconds, micros = mine.time()
    assert abs(seconds + micros / 1e6 - sum(full.time()[i] / 10 ** (6 * i) for i in (0, 1))) < 5


def test_an_error_reply_raises_a_response_error(
    both: tuple[LeanRedis, redis.Redis], data: str
) -> None:
    mine, _ = both
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        mine.hget(f"{data}l", "x")
    assert mine.llen(f"{data}l") == 3, "the connection stays usable"
    assert ResponseError in response_errors() and redis.ResponseError in response_errors()


def test_a_dropped_connection_is_opened_again_once(
    both: tuple[LeanRedis, redis.Redis], data: str
) -> None:
    mine, full = both
    mine.ping()
    assert mine._sock is not None
    port = mine._sock.getsockname()[1]
    assert full.client_kill(f"127.0.0.1:{port}")
    assert mine.hget(f"{data}h", "a") == b"1"
    assert mine._sock is not None and mine._sock.getsockname()[1] != port


def test_nothing_listening_is_unreachable_in_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailableError) as err:
        lean(url).ping()
    assert str(err.value).startswith(f"Redis at {url} is unreachable: ")
    assert "\n" not in str(err.value)


def test_a_server_that_never_answers_times_out_within_the_bound() -> None:
    """A listener that accepts and then says nothing (a frozen Redis) must not hang us."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError, match="unreachable: Timeout"):
        lean(url, timeout=0.5).ping()
    assert time.monotonic() - started < 10, "bounded by the timeout (generous: no timing test)"
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_server_that_is_not_redis_is_unreachable_in_one_line() -> None:
    """An HTTP server on the port, say: its answer is not RESP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer() -> None:
        conn = listener.accept()[0]
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    with pytest.raises(RedisUnavailableError, match=r"is unreachable: .*[Pp]rotocol"):
        lean(url).ping()
    listener.close()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server with a password, on a port and a unix socket."""
    port, sock = free_port(), tmp_path / "redis.sock"
    server = redis_binary()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--requirepass", "s3cr3t/+", "--unixsocket", str(sock),
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port, sock
    proc.terminate()
    proc.wait(10)


def test_a_password_and_a_database_are_used_on_tcp_and_unix_sockets(
    guarded: tuple[int, Path],
) -> None:
    port, sock = guarded
    full = redis.Redis(port=port, password="s3cr3t/+", db=3)
    full.set("where", "db3")
    for url in (
        f"redis://:s3cr3t%2F%2B@127.0.0.1:{port}/3",
        f"redis://default:s3cr3t%2F%2B@127.0.0.1:{port}/3",
        f"unix://:s3cr3t%2F%2B@{sock}?db=3",
    ):
        check_url(url)
        assert lean(url).get("where") == b"db3", url
    with pytest.raises(RedisUnavailableError, match=r"refused us: .*(WRONGPASS|invalid)"):
        lean(f"redis://:wrong@127.0.0.1:{port}/3").get("where")
    full.close()


@pytest.mark.parametrize(
    "url",
    ["rediss://127.0.0.1:6380/0", "redis://127.0.0.1:6379/0?socket_timeout=3", "redis://h/0/1"],
)
def test_urls_it_does_not_serve_go_to_redis_py(url: str) -> None:
    assert LeanRedis.from_url(url, timeout=1.0, where=url) is None


def test_a_malformed_url_is_still_refused_in_one_line() -> None:
    with pytest.raises(OrchestratorError, match=r"is not a Redis URL: .*Port"):
        check_url("redis://127.0.0.1:99999/0", source="ORCH_REDIS_URL")


def test_connect_reads_checks_the_eviction_policy_like_connect(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, extra_args=["--maxmemory-policy", "allkeys-lru"])
    server.start()
    try:
        with pytest.raises(RedisPolicyError, match="allkeys-lru"):
            connect_reads(server.url, Settings())
    finally:
        server.stop()


def test_a_read_only_client_reads_what_the_full_client_reads_and_refuses_writes(
    client: Client, wf_name: str
) -> None:
    wf = Flow(wf_name, 1, input={}).step("a", "m:f", queue="nobody").build()
    run = client.submit(wf, {})
    before = run.status()
    with Client(client.url, read_only=True) as reader:
        assert isinstance(reader.conn, LeanRedis)
        assert reader.run(run.id).status() == run.status()
        assert [d["id"] for d in reader.runs(limit=5, workflow=wf_name)] == [run.id]
        ages = {"oldest_age", "oldest"}  # seconds since: read at two moments

        def without_ages(doc: dict[str, Any]) -> dict[str, Any]:
            return {
                k: [{f: x for f, x in row.items() if f not in ages} for row in v]
                if isinstance(v, list)
                else v
                for k, v in doc.items()
            }

        assert without_ages(reader.queues()) == without_ages(client.queues())
        read, wrote = reader.metrics(wf_name, window="24h"), client.metrics(wf_name, window="24h")
        assert [v.current for v in read.versions] == [v.current for v in wrote.versions]
        with pytest.raises(ReadOnlyClientError, match="read_only=True"):
            reader.submit(wf, {})
        with pytest.raises(ReadOnlyClientError):
            reader.cancel(run.id)
    assert run.status() == before, "the refused writes changed nothing"
    assert [d["id"] for d in client.runs(limit=5, workflow=wf_name)] == [run.id]
