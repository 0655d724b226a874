"""The load generator's HTTP/1.1 client: raw asyncio protocols on keep-alive connections.

A Python HTTP client library on the same 2 cores as the server would measure itself
(httpx manages a few thousand requests a second); this one sends pre-built request
bytes and reads just enough of each response (status, Content-Length) to know it is
complete, so it stays well above what one server worker can do (`calibrate` shows it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

HEADER_END = b"\r\n\r\n"


@dataclass
class Run:
    """Shared budget and results of one measured phase."""

    deadline: float  # time.perf_counter() value
    max_requests: int
    sent: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def may_send(self) -> bool:
        return self.sent < self.max_requests and time.perf_counter() < self.deadline


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending a request as soon as the last one is answered."""

    def __init__(
        self, run: Run, requests: Sequence[bytes], offset: int, finished: asyncio.Future[None]
    ) -> None:
        self.run = run
        self.requests = requests
        self.index = offset
        self.finished = finished
        self.buffer = b""
        self.started = 0
        self.waiting = False  # a request is out and its response not complete
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        if not self.run.may_send():
            self.transport.close()
            return
        self.run.sent += 1
        request = self.requests[self.index % len(self.requests)]
        self.index += 1
        self.started = time.perf_counter_ns()
        self.waiting = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(HEADER_END)
        if end < 0:
            return
        length = _content_length(self.buffer[:end])
        total = end + len(HEADER_END) + length
        if len(self.buffer) < total:
            return
        self.run.latencies_ns.append(time.perf_counter_ns() - self.started)
        self.waiting = False
        status = int(self.buffer[9:12])
        self.run.statuses[status] = self.run.statuses.get(status, 0) + 1
        if not 200 <= status < 300:
            self.run.errors += 1
        self.buffer = self.buffer[total:]
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting:
            self.run.errors += 1  # the server closed before answering in full
        if not self.finished.done():
            self.finished.set_result(None)


def _content_length(head: bytes) -> int:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + len(b"\r\ncontent-length:")
    stop = lower.find(b"\r\n", start)
    return int(lower[start : stop if stop >= 0 else None])


async def hammer(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    seconds: float,
    concurrency: int,
    max_requests: int,
) -> tuple[Run, float]:
    """Run `concurrency` connections for `seconds` or `max_requests`; the run and its
    elapsed wall time."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    run = Run(deadline=start + seconds, max_requests=max_requests)
    connections: list[_Connection] = []
    try:
        for i in range(concurrency):
            offset = i * max(1, len(requests) // concurrency)
            factory = partial(_Connection, run, requests, offset, loop.create_future())
            _, connection = await loop.create_connection(factory, host, port)
            connections.append(connection)
        # a server that stops answering must not hold the run past its deadline for long
        await asyncio.wait_for(
            asyncio.gather(*(c.finished for c in connections)), timeout=seconds + 30
        )
    finally:
        for connection in connections:  # no-op for those already closed
            if connection.transport is not None:
                connection.transport.close()
    return run, time.perf_counter() - start


def build_request(
    method: str, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    """Request bytes, built once and sent many times."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
