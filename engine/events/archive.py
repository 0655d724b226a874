"""The event archive: the capped Redis stream moved into Parquet files, one folder per day.

A consumer group tracks what was archived. Entries are acknowledged (and deleted from
the stream) only after their file is durably on disk, so a crash loses nothing; the
entries it left pending are read again first on the next run, and rows whose event id
is already in that day's files are dropped, so the crash duplicates nothing either.
Erased visitors (`Keys.erasures`) are dropped from existing files at the next run.
One run at a time per folder (a lock file): serving workers and the CLI take turns.
File work runs in a thread: a serving worker's event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from redis.exceptions import ResponseError

from engine.errors import OmotenashiError, StoreUnavailable
from engine.store.client import Store
from engine.store.keys import ARCHIVE_GROUP
from engine.store.scripts import LuaScript, with_script

log = logging.getLogger(__name__)

CONSUMER = "archiver"  # one name for every process, so any run takes over a crash's entries
READ_COUNT = 1000  # decision records are ~1 KB: a bigger read can outlast the Redis timeout
LOCK_FILE = ".lock"
SECONDS_PER_DAY = 86_400
SCHEMA = pa.schema(
    [
        ("stream_id", pa.string()),
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("pid", pa.string()),
        ("profile", pa.string()),
        ("ts", pa.float64()),
        ("channel", pa.string()),
        ("token", pa.string()),
        ("item_id", pa.string()),
        ("value", pa.float64()),
        ("properties", pa.string()),
    ]
)
# Only members still at the score that was read: a visitor erased again meanwhile (new
# log entries, perhaps archived by this very run) stays listed for the next run.
FORGET_ERASURES = LuaScript(
    "archive_forget_erasures",
    """
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
""",
)

Entry = tuple[str, dict[bytes, bytes]]


class ArchiveBusy(OmotenashiError):
    """Another archiver is working on this folder; this run did nothing."""

    status = 409
    code = "archive_busy"


@dataclass(slots=True)
class ArchiveRun:
    """What one run did, for the CLI and the logs."""

    entries: int = 0
    rows_written: int = 0
    duplicates_skipped: int = 0
    files_written: list[Path] = field(default_factory=list)
    erased_rows_dropped: int = 0


def day_folder(root: Path, day: date) -> Path:
    return root / f"day={day.isoformat()}"


async def archive_once(store: Store, root: Path) -> ArchiveRun:
    """Compact erasures, then archive what the stream holds now: a crash's leftovers
    first, then new entries up to the last one present when the run began (so a run
    ends even while events keep arriving).

    Raises `ArchiveBusy` when another run holds `root`, `StoreUnavailable` when Redis
    is away.
    """
    lock = await asyncio.to_thread(_begin, root)
    try:
        run = ArchiveRun()
        await _compact_erasures(store, root, run)
        end = await _prepare_stream(store)
        known: dict[date, set[str]] = {}
        for start in ("0", ">"):  # this consumer's pending entries (a crash), then new ones
            if start == ">" and end is None:
                break
            while entries := await _read(store, start):
                live = [entry for entry in entries if entry[1]]
                run.entries += len(live)
                await asyncio.to_thread(_write_batch, root, live, known, run)
                await _acknowledge(store, [stream_id for stream_id, _ in entries])
                if start == ">" and end is not None and _order(entries[-1][0]) >= end:
                    break
        return run
    finally:
        os.close(lock)  # releases the flock


async def archive_forever(store: Store, root: Path, interval_s: float, stop: asyncio.Event) -> None:
    """Archive every `interval_s` until `stop` is set (a background task of the app)."""
    while not stop.is_set():
        try:
            run = await archive_once(store, root)
            if run.entries or run.erased_rows_dropped:
                log.info(
                    "archived %d entries (%d rows, %d duplicates); dropped %d erased rows",
                    run.entries,
                    run.rows_written,
                    run.duplicates_skipped,
                    run.erased_rows_dropped,
                )
        except StoreUnavailable:
            pass  # the store logged it; nothing can move until Redis is back
        except ArchiveBusy:
            log.debug("another archiver holds %s; skipping this run", root)
        except Exception:
            log.exception("archive run failed; retrying in %.1fs", interval_s)
        task = asyncio.current_task()
        if task is not None and task.cancelling():  # see engine.background.pause
            raise asyncio.CancelledError
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def read_archive(
    root: Path, start_day: date | None = None, end_day: date | None = None
) -> pa.Table:
    """Every archived event between the days (inclusive), each event id once.

    Delivery into the archive is at least once across days (dedupe at write time is
    per day), so readers such as training and RFM go through here.
    """
    tables = []
    for folder in sorted(root.glob("day=*")):
        day = date.fromisoformat(folder.name.removeprefix("day="))
        if (start_day and day < start_day) or (end_day and day > end_day):
            continue
        tables += [pq.read_table(path, schema=SCHEMA) for path in sorted(folder.glob("*.parquet"))]
    if not tables:
        return SCHEMA.empty_table()
    return _first_per_event_id(pa.concat_tables(tables))


def _begin(root: Path) -> int:
    """Take the folder's lock, then clear temp files a crashed run left behind."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ArchiveBusy(f"another archiver is working on {root}") from None
    for leftover in root.glob("day=*/*.tmp"):
        leftover.unlink()
    return fd


async def _prepare_stream(store: Store) -> tuple[int, int] | None:
    """Create the consumer group if missing; the id of the newest entry, if any."""
    key = store.keys.event_log
    async with store.guard("archive"):
        try:
            await store.redis.xgroup_create(key, ARCHIVE_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        newest: Any = await store.redis.xrevrange(key, count=1)
    return _order(newest[0][0].decode()) if newest else None


async def _read(store: Store, start: str) -> list[Entry]:
    async with store.guard("archive"):
        reply: Any = await store.redis.xreadgroup(
            ARCHIVE_GROUP, CONSUMER, {store.keys.event_log: start}, count=READ_COUNT
        )
    if not reply:
        return []
    _, entries = reply[0]
    # a pending entry deleted meanwhile (erased, trimmed) comes back with no fields
    return [(stream_id.decode(), fields) for stream_id, fields in entries]


async def _acknowledge(store: Store, ids: Sequence[str]) -> None:
    """Ack and delete together: an acked entry left in the stream would be counted twice."""
    async with store.guard("archive"):
        pipe = store.redis.pipeline(transaction=True)
        pipe.xack(store.keys.event_log, ARCHIVE_GROUP, *ids)
        pipe.xdel(store.keys.event_log, *ids)
        await pipe.execute()


def _order(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def _table(entries: Sequence[Entry]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for stream_id, fields in entries:
        try:
            record = orjson.loads(fields[b"e"])
            row = (
                stream_id,
                record["event_id"],
                record["type"],
                record["pid"],
                fields[b"p"].decode(),
                float(record["ts"]),
                record["channel"],
                record.get("token"),
                record.get("item_id"),
                record.get("value"),
                orjson.dumps(record.get("properties") or {}).decode(),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"event-log entry {stream_id} is malformed: {exc!r}") from exc
        for values, value in zip(columns.values(), row, strict=True):
            values.append(value)
    return pa.table(columns, schema=SCHEMA)


def _write_batch(
    root: Path, entries: Sequence[Entry], known: dict[date, set[str]], run: ArchiveRun
) -> None:
    """One file per UTC day, without the event ids that day already holds."""
    if not entries:
        return
    table = _table(entries)
    day_numbers = np.floor(table.column("ts").to_numpy() / SECONDS_PER_DAY).astype(np.int64)
    event_ids = table.column("event_id").to_pylist()
    for number in np.unique(day_numbers):
        day = datetime.fromtimestamp(int(number) * SECONDS_PER_DAY, UTC).date()
        folder = day_folder(root, day)
        seen = known.get(day)
        if seen is None:
            seen = known[day] = _event_ids(folder)
        fresh = []
        for index in np.flatnonzero(day_numbers == number).tolist():
            if event_ids[index] in seen:
                run.duplicates_skipped += 1
            else:
                seen.add(event_ids[index])
                fresh.append(index)
        if not fresh:
            continue
        first, last = entries[fresh[0]][0], entries[fresh[-1]][0]
        path = _unused(folder, f"part-{first.replace('-', '_')}-{last.replace('-', '_')}")
        _write_table(table.take(fresh), path)
        run.rows_written += len(fresh)
        run.files_written.append(path)


def _unused(folder: Path, stem: str) -> Path:
    """`stem.parquet`, or a numbered variant if a file of that name exists (after an
    erasure emptied rows out of it, the same range can come round again): never
    replace a file that holds other rows."""
    path, number = folder / f"{stem}.parquet", 0
    while path.exists():
        number += 1
        path = folder / f"{stem}.{number}.parquet"
    return path


def _event_ids(folder: Path) -> set[str]:
    ids: set[str] = set()
    for path in sorted(folder.glob("*.parquet")):
        ids.update(pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist())
    return ids


def _write_table(table: pa.Table, path: Path) -> None:
    """Write, fsync, rename, fsync the folder: after this returns the file survives a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _compact_erasures(store: Store, root: Path, run: ArchiveRun) -> None:
    """Drop erased visitors' rows from every file, then forget the erasures read."""
    key = store.keys.erasures
    async with store.guard("archive"):
        reply: Any = await store.redis.zrange(key, 0, -1, withscores=True)
    erased: list[tuple[bytes, float]] = reply
    if not erased:
        return
    pids = {member.decode() for member, _ in erased}
    run.erased_rows_dropped = await asyncio.to_thread(_drop_erased, root, pids)
    args = [part for member, score in erased for part in (member, repr(score))]
    redis = store.redis
    async with store.guard("archive"):
        await with_script(
            redis, FORGET_ERASURES, lambda: redis.evalsha(FORGET_ERASURES.sha, 1, key, *args)
        )


def _drop_erased(root: Path, pids: set[str]) -> int:
    """Rewrite each file holding rows of `pids` (as visitor or profile) without them."""
    dropped = 0
    wanted = pa.array(sorted(pids), pa.string())
    for path in sorted(root.glob("day=*/*.parquet")):
        hit = _erased_rows(pq.read_table(path, columns=["pid", "profile"]), wanted)
        count = pc.sum(hit).as_py() or 0
        if not count:
            continue
        table = pq.read_table(path)
        kept = table.filter(pc.invert(_erased_rows(table, wanted)))
        if kept.num_rows:
            _write_table(kept, path)
        else:
            path.unlink()
            _fsync_folder(path.parent)
        dropped += count
    return dropped


def _erased_rows(table: pa.Table, wanted: pa.Array) -> pa.ChunkedArray:
    return pc.or_(pc.is_in(table["pid"], wanted), pc.is_in(table["profile"], wanted))


def _first_per_event_id(table: pa.Table) -> pa.Table:
    """The table without repeated event ids, keeping each one's first row in order."""
    rows = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    firsts = rows.group_by("event_id", use_threads=False).aggregate([("_row", "min")])
    keep = np.sort(firsts.column("_row_min").to_numpy())
    return table if len(keep) == table.num_rows else table.take(keep)
