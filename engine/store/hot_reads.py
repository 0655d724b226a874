"""The hot path's Redis calls: one pipelined connection parsed by hiredis.

redis-py's asyncio client spends about 120 us of CPU per command here (stream
readers, a pooled connection with its lock and health check, retry wrapper); this
reader spends about 40 us: an `asyncio.Protocol` feeding hiredis, with concurrent
requests pipelined on one socket and replies matched in order (measured in the
notes of issue 3). Commands issued in the same event-loop turn go out in one write:
on these machines a socket write costs more than all of decide's own logic.
It carries the hot path's script calls (the visitor read, the decision log's batches,
through `scripts.run_script`); everything else uses redis-py.
TLS URLs (`rediss://`) are not handled here: the store then reads through redis-py.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable
from typing import Any

import hiredis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def supports(url: str) -> bool:
    return _parse(url).get("connection_class") is not SSLConnection


def _parse(url: str) -> dict[str, Any]:
    options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    return options


def pack(*args: str | bytes | int) -> bytes:
    """A command in RESP (`*<n>`, then `$<len>` and the bytes of each argument), packed
    by hiredis in C."""
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]  # stub: a 1-tuple
    return packed


class _Protocol(asyncio.Protocol):
    """Replies are matched to waiters in order. One watchdog timer, not one timeout per
    command, notices a reply overdue by `timeout_s` and drops the connection."""

    def __init__(self, timeout_s: float) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.sent_at: collections.deque[float] = collections.deque()
        self.transport: asyncio.WriteTransport | None = None
        self.lost = False
        self.pending: list[bytes] = []
        self.timeout_s = timeout_s
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiters.popleft()
            self.sent_at.popleft()
            if waiter.done():
                continue  # its caller timed out; the reply still keeps the order
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(ResponseError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"connection lost: {exc}"))

    def fail(self, error: Exception) -> None:
        self.lost = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if self.transport is not None:
            self.transport.close()
        self.sent_at.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if self.lost:
            waiter.set_exception(RedisConnectionError("connection lost"))
            return waiter
        self.waiters.append(waiter)
        self.sent_at.append(loop.time())
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append(command)
        if self.watchdog is None:
            self.watchdog = loop.call_later(self.timeout_s, self._check_overdue)
        return waiter

    def _check_overdue(self) -> None:
        self.watchdog = None
        if not self.sent_at:
            return
        loop = asyncio.get_running_loop()
        overdue_at = self.sent_at[0] + self.timeout_s
        if loop.time() >= overdue_at:
            self.fail(RedisTimeoutError(f"no reply from redis within {self.timeout_s}s"))
        else:
            self.watchdog = loop.call_at(overdue_at, self._check_overdue)

    def _flush(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(b"".join(self.pending))
        self.pending.clear()


class PipelinedReader:
    """Reads over one lazily (re)connected socket; errors are redis-py's exceptions."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._options = _parse(url)
        self._timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()
        self._failed_at = -1e9  # loop time of the last failed connect

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        flat = await self.execute(pack(b"HGETALL", key))
        pairs = iter(flat)
        return dict(zip(pairs, pairs, strict=True))

    def execute(self, command: bytes) -> Awaitable[Any]:
        """The reply to `command`, awaitable. Connected, that is the reply's future
        itself: no coroutine of its own on the hot path."""
        protocol = self._protocol
        if protocol is None or protocol.lost:
            return self._connect_and_send(command)
        return protocol.send(command)

    async def _connect_and_send(self, command: bytes) -> Any:
        protocol = await self._connect()
        return await protocol.send(command)

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and not self._protocol.lost:
                return self._protocol
            loop = asyncio.get_running_loop()
            if loop.time() - self._failed_at < self._timeout_s:
                # callers queued behind a failed attempt fail together, not one by one
                raise RedisConnectionError("redis connect failed just now")
            try:
                return await self._open(loop)
            except BaseException:
                self._failed_at = loop.time()
                raise

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        options = self._options

        def factory() -> _Protocol:
            return _Protocol(self._timeout_s)

        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                if "path" in options:
                    _, protocol = await loop.create_unix_connection(factory, options["path"])
                else:
                    _, protocol = await loop.create_connection(
                        factory, options.get("host", "localhost"), options.get("port", 6379)
                    )
                setup = []
                if options.get("password"):
                    auth = (options.get("username"), options["password"])
                    setup.append(protocol.send(pack(b"AUTH", *(a for a in auth if a))))
                if options.get("db"):
                    setup.append(protocol.send(pack(b"SELECT", options["db"])))
                await asyncio.gather(*setup)
        except BaseException as exc:
            if protocol is not None:  # wrong password, hung server, cancelled: drop it
                protocol.fail(RedisConnectionError("connection setup failed"))
            if isinstance(exc, OSError | TimeoutError):
                raise RedisConnectionError(f"cannot connect to redis: {exc}") from exc
            raise
        if protocol.lost:
            raise RedisConnectionError("connection lost during setup")
        self._protocol = protocol
        return protocol

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.fail(RedisConnectionError("reader closed"))
            self._protocol = None
