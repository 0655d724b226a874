"""The generator's own ceiling: the same client against a server that does nothing.

If this is several times what the engine's bare endpoint reaches, the figures of a
load test are the engine's, not the generator's.
"""

from __future__ import annotations

import subprocess
import sys

import uvloop

from loadtests.client import build_request, hammer
from loadtests.run import MAX_CONCURRENCY, MAX_REQUESTS, MAX_SECONDS
from loadtests.stats import PhaseResult, summarize

# A minimal HTTP/1.1 server: answers every complete request head with a fixed reply
# (404 for /missing, hang-up for /close, so error counting can be tested too).
TINY_SERVER = r"""
import asyncio, sys, uvloop
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}"
MISSING = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.b = t, b""
    def data_received(self, d):
        self.b += d
        while (i := self.b.find(b"\r\n\r\n")) >= 0:
            head, self.b = self.b[:i], self.b[i + 4:]
            if b" /close " in head:
                self.t.close()
                return
            self.t.write(MISSING if b" /missing " in head else OK)
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(float(sys.argv[1]))
uvloop.run(main())
"""


class TinyServer:
    """The tiny server in a subprocess (its own core, like the engine's worker)."""

    def __init__(self, lifetime_s: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", TINY_SERVER, str(lifetime_s)], stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> TinyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def calibrate(
    seconds: float, concurrency: int, max_requests: int, path: str = "/healthz"
) -> PhaseResult:
    """Run the generator against the tiny server; bounded like a load test."""
    if not 0 < seconds <= MAX_SECONDS or not 0 < max_requests <= MAX_REQUESTS:
        raise ValueError(
            f"seconds must be in (0, {MAX_SECONDS:g}], requests in (0, {MAX_REQUESTS}]"
        )
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be 1..{MAX_CONCURRENCY}")
    with TinyServer(lifetime_s=seconds + 60) as server:
        request = build_request("GET", path, f"127.0.0.1:{server.port}")
        run, elapsed = uvloop.run(
            hammer(
                "127.0.0.1",
                server.port,
                [request],
                seconds=seconds,
                concurrency=concurrency,
                max_requests=max_requests,
            )
        )
        return summarize(run, elapsed)
