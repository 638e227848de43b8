"""A small Redis client for the commands people run most: ``orch status`` and ``orch runs``.

Why not redis-py here: importing it costs 80-100 ms, more than all the rest
of ``orch status`` together, because its synchronous client also imports its
asyncio client, and with it ``asyncio``, ``ssl`` and ``importlib.metadata``.
A status read is a handful of commands on one connection, so the quick
commands speak RESP over a plain socket instead, with ``hiredis`` (the C
parser redis-py itself uses) reading the replies and packing the commands.
Start-up is held to a budget (docs/BENCHMARKS.md, "start-up").

The client has only the commands the read path calls, with redis-py's names,
arguments and reply shapes (``bytes`` values, dicts for hashes, sets for
sets), so the readers take either client. ``Conn`` is that union, and mypy
checks that every command a reader calls exists here too. Everything else
(writes, scripts, pub/sub, TLS) goes through redis-py:
``connection.connect_reads`` picks this client only for ``redis://`` and
``unix://`` URLs without options, when ``hiredis`` is installed.

Failures keep the full client's meaning. A connection refused, reset or timed
out raises ``RedisUnavailableError`` (exit 3, one line). A connection that
fails before its reply is read is opened again and the command sent once
more, as the full client's single retry does (every command here is
idempotent). An error reply raises ``ResponseError``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from urllib.parse import unquote, urlsplit

import hiredis

from orchestrator.errors import RedisUnavailableError
from orchestrator.redis_errors import ResponseError

if TYPE_CHECKING:
    import redis

    #: A connection any reader takes: redis-py's client, or this one.
    Conn: TypeAlias = "redis.Redis | LeanRedis"

Arg = str | bytes | int | float
Reply = Any  # what hiredis parsed: bytes, int, a list of replies, or None
Convert = Callable[[Reply], Any]

#: Bytes read from the socket at a time.
CHUNK = 65536

#: One command as RESP (hiredis's stub types its argument too narrowly).
_pack = cast(Callable[[Sequence[Arg]], bytes], hiredis.pack_command)


def _same(raw: Reply) -> Any:
    return raw


def _pairs(raw: Reply) -> dict[bytes, bytes]:
    return dict(zip(raw[::2], raw[1::2], strict=True))


def _scored(raw: Reply) -> list[tuple[bytes, float]]:
    return [(m, float(s)) for m, s in zip(raw[::2], raw[1::2], strict=True)]


def _texts(raw: Reply) -> dict[str, str]:
    """CONFIG GET's pairs, decoded (as redis-py gives them, whatever its decoding)."""
    return {k.decode(): v.decode() for k, v in _pairs(raw).items()}


def _ok(raw: Reply) -> bool:
    return raw is not None


class Commands:
    """The commands, each a name and its reply's conversion; ``_command`` runs or queues it."""

    def _command(self, convert: Convert, *args: Arg) -> Any:
        raise NotImplementedError

    def ping(self) -> Any:
        return self._command(lambda r: r == b"PONG", "PING")

    def time(self) -> Any:
        return self._command(lambda r: (int(r[0]), int(r[1])), "TIME")

    def config_get(self, pattern: str = "*") -> Any:
        return self._command(_texts, "CONFIG", "GET", pattern)

    def exists(self, *names: str) -> Any:
        return self._command(_same, "EXISTS", *names)

    def get(self, name: str) -> Any:
        return self._command(_same, "GET", name)

    def set(self, name: str, value: Arg, nx: bool = False) -> Any:
        return self._command(_ok, "SET", name, value, *(("NX",) if nx else ()))

    def hget(self, name: str, key: str) -> Any:
        return self._command(_same, "HGET", name, key)

    def hgetall(self, name: str) -> Any:
        return self._command(_pairs, "HGETALL", name)

    def hmget(self, name: str, keys: Sequence[str]) -> Any:
        return self._command(_same, "HMGET", name, *keys)

    def hkeys(self, name: str) -> Any:
        return self._command(_same, "HKEYS", name)

    def llen(self, name: str) -> Any:
        return self._command(_same, "LLEN", name)

    def lindex(self, name: str, index: int) -> Any:
        return self._command(_same, "LINDEX", name, index)

    def lrange(self, name: str, start: int, end: int) -> Any:
        return self._command(_same, "LRANGE", name, start, end)

    def smembers(self, name: str) -> Any:
        return self._command(set, "SMEMBERS", name)

    def sadd(self, name: str, *values: Arg) -> Any:
        return self._command(_same, "SADD", name, *values)

    def zcard(self, name: str) -> Any:
        return self._command(_same, "ZCARD", name)

    def zcount(self, name: str, min: float | str, max: float | str) -> Any:
        return self._command(_same, "ZCOUNT", name, min, max)

    def zrange(self, name: str, start: int, end: int, withscores: bool = False) -> Any:
        if withscores:
            return self._command(_scored, "ZRANGE", name, start, end, "WITHSCORES")
        return self._command(_same, "ZRANGE", name, start, end)

    def zrevrange(self, name: str, start: int, end: int) -> Any:
        return self._command(_same, "ZREVRANGE", name, start, end)

    def zrangebyscore(self, name: str, min: float | str, max: float | str) -> Any:
        return self._command(_same, "ZRANGEBYSCORE", name, min, max)


class LeanRedis(Commands):
    """One connection, opened on first use, with every read and write bounded by ``timeout``."""

    def __init__(
        self,
        address: str | tuple[str, int],
        *,
        db: int,
        auth: tuple[str, ...],
        timeout: float,
        where: str,
    ) -> None:
        self.address = address
        self.db = db
        self.auth = auth
        self.timeout = timeout
        self.where = where  # the URL without its password, for messages
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()

    @classmethod
    def from_url(cls, url: str, *, timeout: float, where: str) -> LeanRedis | None:
        """A client for ``url``, or None when the URL needs what only redis-py has."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "unix") or parts.fragment:
            return None
        query = dict(q.split("=", 1) for q in parts.query.split("&") if "=" in q)
        if set(query) - {"db"} or (parts.query and not query):
            return None
        path = parts.path.strip("/")
        db = query.get("db") or (path if parts.scheme == "redis" else "") or "0"
        if not db.isdigit():
            return None
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        auth = (user, password) if user and password else (password,) if password else ()
        if parts.scheme == "unix":
            address: str | tuple[str, int] = parts.path
        else:
            address = (parts.hostname or "localhost", parts.port or 6379)
        return cls(address, db=int(db), auth=auth, timeout=timeout, where=where)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def pipeline(self, transaction: bool = True) -> LeanPipeline:
        """Commands sent together and answered together (never a MULTI: reads need none)."""
        return LeanPipeline(self)

    def scan_iter(self, match: str | None = None, count: int | None = None) -> Iterator[bytes]:
        yield from self._scan(("SCAN",), match, count, lambda r: r)

    def zscan_iter(
        self, name: str, match: str | None = None, count: int | None = None
    ) -> Iterator[tuple[bytes, float]]:
        yield from self._scan(("ZSCAN", name), match, count, _scored)

    def _scan(
        self, command: tuple[str, ...], match: str | None, count: int | None, items: Convert
    ) -> Iterator[Any]:
        options = (*(("MATCH", match) if match else ()), *(("COUNT", count) if count else ()))
        cursor: bytes = b"0"
        while True:
            cursor, found = self.execute([(*command, cursor, *options)])[0]
            yield from items(found)
            if cursor == b"0":
                return

    def _command(self, convert: Convert, *args: Arg) -> Any:
        return convert(self.execute([args])[0])

    def execute(self, commands: Sequence[Sequence[Arg]]) -> list[Reply]:
        """Send ``commands`` in one write and read their replies (once more on a dropped line)."""
        payload = b"".join(_pack(tuple(c)) for c in commands)
        try:
            return self._exchange(payload, len(commands))
        except (ConnectionError, EOFError) as first:
            if isinstance(first, ConnectionRefusedError):
                raise self._unreachable(first) from None
            self.close()
        try:
            return self._exchange(payload, len(commands))
        except (OSError, EOFError) as exc:
            raise self._unreachable(exc) from None

    def _exchange(self, payload: bytes, count: int) -> list[Reply]:
        sock = self._connected()
        try:
            sock.sendall(payload)
            replies = [self._read(sock) for _ in range(count)]
        except TimeoutError as exc:
            self.close()
            raise self._unreachable(exc) from None
        except hiredis.ProtocolError as exc:  # whatever answered does not speak RESP
            raise self._unreachable(exc) from None
        except BaseException:
            self.close()
            raise
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise ResponseError(str(reply))
        return replies

    def _read(self, sock: socket.socket) -> Reply:
        while True:
            reply = self._reader.gets()
            if reply is not False:
                return reply
            data = sock.recv(CHUNK)
            if not data:
                raise EOFError("Redis closed the connection")
            self._reader.feed(data)

    def _connected(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        try:
            sock = self._open()
        except OSError as exc:  # refused, unresolvable, or timed out (a TimeoutError)
            raise self._unreachable(exc) from None
        self._sock, self._reader = sock, hiredis.Reader()
        hello: list[tuple[Arg, ...]] = [("AUTH", *self.auth)] if self.auth else []
        hello += [("SELECT", self.db)] if self.db else []
        if hello:
            payload = b"".join(_pack(c) for c in hello)
            try:
                self._exchange(payload, len(hello))
            except ResponseError as exc:
                raise RedisUnavailableError(f"Redis at {self.where} refused us: {exc}") from None
        return sock

    def _open(self) -> socket.socket:
        if isinstance(self.address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.address)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(self.address, timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _unreachable(self, exc: BaseException) -> RedisUnavailableError:
        self.close()
        why = "Timeout reading from socket" if isinstance(exc, TimeoutError) else str(exc)
        return RedisUnavailableError(f"Redis at {self.where} is unreachable: {why or repr(exc)}")


class LeanPipeline(Commands):
    """Commands queued, then sent in one write by ``execute``, with their replies converted."""

    def __init__(self, client: LeanRedis) -> None:
        self.client = client
        self._queued: list[tuple[Convert, tuple[Arg, ...]]] = []

    def __enter__(self) -> LeanPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queued.clear()

    def _command(self, convert: Convert, *args: Arg) -> LeanPipeline:
        self._queued.append((convert, args))
        return self

    def execute(self) -> list[Any]:
        queued, self._queued = self._queued, []
        if not queued:
            return []
        replies = self.client.execute([args for _, args in queued])
        return [convert(r) for (convert, _), r in zip(queued, replies, strict=True)]
