"""The event spool: where accepted events wait on local disk while Redis is away.

Each worker appends to a file of its own (JSON lines) and holds an exclusive `flock`
on it while it writes; a file nobody holds is complete and may be replayed by any
worker, including files a crashed worker left behind. Replay sends the events through
the normal write path in batches and deletes what went through, so an outage loses
nothing. A batch cut off mid-write may be replayed twice; the ingest script drops the
events it has already seen (by event id), so each lands once.
Disk work runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import orjson

from engine.errors import StoreUnavailable
from models.events import Event

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
REPLAY_BATCH = 500
Writer = Callable[[Sequence[Event]], Awaitable[object]]


class EventSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._path: Path | None = None
        self._lock = asyncio.Lock()

    async def append(self, events: Sequence[Event]) -> None:
        """Append durably (fsync) before the client is told its events are accepted."""
        data = b"".join(orjson.dumps(e.to_record()) + b"\n" for e in events)
        async with self._lock:
            await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            # created and locked under a name replayers ignore, then renamed: no replayer
            # can claim (and delete) it between creation and lock
            staging = self.directory / f"{name}.new"
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._path = staging.rename(self.directory / f"{name}{SUFFIX}")
            self._fd = fd
        view = memoryview(data)
        while view:  # a short write (full disk) must not be acknowledged
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    async def replay(self, write: Writer) -> int:
        """Send every complete spool file through `write`; the number of events sent.

        Stops at the first `StoreUnavailable`, keeping what was not sent.
        """
        async with self._lock:
            await asyncio.to_thread(self._seal)
        sent = 0
        for path in await asyncio.to_thread(self._files):
            claimed = await asyncio.to_thread(_claim, path)
            if claimed is None:
                continue  # another worker is writing or replaying it
            fd, events = claimed
            try:
                for start in range(0, len(events), REPLAY_BATCH):
                    try:
                        await write(events[start : start + REPLAY_BATCH])
                    except StoreUnavailable:
                        await asyncio.to_thread(_keep_rest, path, events[start:])
                        return sent
                    sent += len(events[start : start + REPLAY_BATCH])
                path.unlink()
            finally:
                os.close(fd)
        return sent

    def _seal(self) -> None:
        """Close our own file so it can be replayed (a new one starts on next append)."""
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
            self._path = None

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}")) if self.directory.exists() else []

    async def has_pending(self) -> bool:
        return bool(await asyncio.to_thread(self._files))

    async def pending_files(self) -> int:
        return len(await asyncio.to_thread(self._files))

    async def pending_events(self) -> int:
        """Events waiting in every spool file (the depth /readyz and /metrics report)."""
        return await asyncio.to_thread(self._count_events)

    def _count_events(self) -> int:
        total = 0
        for path in self._files():
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as fh:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        return total

    async def aclose(self) -> None:
        async with self._lock:
            self._seal()


def _claim(path: Path) -> tuple[int, list[Event]] | None:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None  # replayed and removed by another worker just now
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        current = os.stat(path).st_ino
    except FileNotFoundError:
        current = None
    if current != os.fstat(fd).st_ino:  # removed or replaced between open and lock
        os.close(fd)
        return None
    events: list[Event] = []
    with open(fd, "rb", closefd=False) as fh:
        for number, line in enumerate(fh, start=1):
            try:
                events.append(_event(orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                # only a crash mid-write leaves a torn last line
                log.error("spool %s line %d unreadable, skipped", path.name, number)
    return fd, events


def _event(record: object) -> Event:
    """An event back from its record, checked enough that replay cannot choke on it."""
    if not isinstance(record, dict):
        raise TypeError("not an object")
    event = Event.from_record(record)
    if not isinstance(event.properties, dict) or not isinstance(event.pid, str):
        raise TypeError("malformed event record")
    return event


def _keep_rest(path: Path, rest: Sequence[Event]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(b"".join(orjson.dumps(e.to_record()) + b"\n" for e in rest))
        fh.flush()
        os.fsync(fh.fileno())
    with contextlib.suppress(FileNotFoundError):
        tmp.replace(path)
