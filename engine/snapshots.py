"""Snapshot files in the data directory: what a worker starting while Redis is away serves
from (definitions, the active recommender's catalogue)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


def write_snapshot(path: Path, document: Any, what: str) -> None:
    """Write aside, then rename: a reader never sees half a file, and workers writing at
    once each rename a whole one (their scratch files carry their pid). A failure is
    logged, not raised: a snapshot is a fallback, never worth a failed refresh."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(orjson.dumps(document))
        tmp.replace(path)
    except OSError as exc:
        log.warning("could not write the %s snapshot %s: %s", what, path, exc)
