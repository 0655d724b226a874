"""The event archive: the capped Redis stream moved into Parquet files, one folder per day.

A consumer group tracks what was archived. Entries are acknowledged (and deleted from
the stream) only after their file is durably on disk, so a crash loses nothing; the
entries it left pending are read again first on the next run, and rows whose event id
is already in that day's files are dropped, so the crash duplicates nothing either.
Erased visitors (`Keys.erasures`) are dropped from existing files at the next run.
File work runs in a thread: a serving worker's event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from redis.exceptions import ResponseError

from engine.errors import StoreUnavailable
from engine.store.client import Store
from engine.store.keys import ARCHIVE_GROUP

log = logging.getLogger(__name__)

CONSUMER = "archiver"
READ_COUNT = 5000
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
    """Archive everything in the stream now; compact erasures first."""
    run = ArchiveRun()
    await _compact_erasures(store, root, run)
    await _ensure_group(store)
    seen: dict[date, set[str]] = {}
    for start in ("0", ">"):  # this consumer's pending entries (a crash), then new ones
        while True:
            entries = await _read(store, start)
            if not entries:
                break
            run.entries += len(entries)
            await asyncio.to_thread(_write_batch, root, entries, seen, run)
            ids = [stream_id for stream_id, _ in entries]
            async with store.guard("archive"):
                pipe = store.redis.pipeline(transaction=False)
                pipe.xack(store.keys.event_log, ARCHIVE_GROUP, *ids)
                pipe.xdel(store.keys.event_log, *ids)
                await pipe.execute()
    return run


async def archive_forever(store: Store, root: Path, interval_s: float, stop: asyncio.Event) -> None:
    """Archive every `interval_s` until `stop` is set (a background task of the app)."""
    while not stop.is_set():
        try:
            run = await archive_once(store, root)
            if run.entries or run.erased_rows_dropped:
                log.info("archived %d entries (%d rows)", run.entries, run.rows_written)
        except StoreUnavailable:
            pass  # Redis away: nothing to move until it is back
        except Exception:
            log.exception("archive run failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _ensure_group(store: Store) -> None:
    async with store.guard("archive"):
        try:
            await store.redis.xgroup_create(
                store.keys.event_log, ARCHIVE_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def _read(store: Store, start: str) -> list[tuple[str, dict[bytes, bytes]]]:
    async with store.guard("archive"):
        reply: Any = await store.redis.xreadgroup(
            ARCHIVE_GROUP, CONSUMER, {store.keys.event_log: start}, count=READ_COUNT
        )
    if not reply:
        return []
    _, entries = reply[0]
    # pending entries deleted from the stream meanwhile come back with no fields
    return [(sid.decode(), fields) for sid, fields in entries if fields]


def _rows(entries: Sequence[tuple[str, dict[bytes, bytes]]]) -> list[dict[str, Any]]:
    rows = []
    for stream_id, fields in entries:
        record = orjson.loads(fields[b"e"])
        props = record.get("properties")
        rows.append(
            {
                "stream_id": stream_id,
                "event_id": record.get("event_id") or stream_id,
                "type": record["type"],
                "pid": record["pid"],
                "profile": fields.get(b"p", record["pid"].encode()).decode(),
                "ts": float(record["ts"]),
                "channel": record.get("channel", ""),
                "token": record.get("token"),
                "item_id": record.get("item_id"),
                "value": record.get("value"),
                "properties": orjson.dumps(props).decode() if props else None,
            }
        )
    return rows


def _write_batch(
    root: Path,
    entries: Sequence[tuple[str, dict[bytes, bytes]]],
    seen: dict[date, set[str]],
    run: ArchiveRun,
) -> None:
    by_day: dict[date, list[dict[str, Any]]] = {}
    for row in _rows(entries):
        day = datetime.fromtimestamp(row["ts"], UTC).date()
        by_day.setdefault(day, []).append(row)
    for day, rows in sorted(by_day.items()):
        folder = day_folder(root, day)
        known = seen.get(day)
        if known is None:
            known = seen[day] = _event_ids(folder)
        fresh = []
        for row in rows:
            if row["event_id"] in known:
                run.duplicates_skipped += 1
                continue
            known.add(row["event_id"])
            fresh.append(row)
        if not fresh:
            continue
        first, last = fresh[0]["stream_id"], fresh[-1]["stream_id"]
        path = folder / f"part-{first.replace('-', '_')}-{last.replace('-', '_')}.parquet"
        _write_table(pa.Table.from_pylist(fresh, schema=SCHEMA), path)
        run.rows_written += len(fresh)
        run.files_written.append(path)


def _event_ids(folder: Path) -> set[str]:
    ids: set[str] = set()
    for path in sorted(folder.glob("*.parquet")):
        ids.update(pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist())
    return ids


def _write_table(table: pa.Table, path: Path) -> None:
    """Write, fsync, rename, fsync the folder: after this returns the file survives a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


async def _compact_erasures(store: Store, root: Path, run: ArchiveRun) -> None:
    async with store.guard("archive"):
        erased: Any = await store.redis.zrange(store.keys.erasures, 0, -1, withscores=True)
    if not erased:
        return
    pids = {member.decode() for member, _ in erased}
    run.erased_rows_dropped = await asyncio.to_thread(_drop_pids, root, pids)
    async with store.guard("archive"):
        # only what was read: an erasure that arrives during the run waits for the next
        await store.redis.zrem(store.keys.erasures, *(member for member, _ in erased))


def _drop_pids(root: Path, pids: set[str]) -> int:
    dropped = 0
    wanted = pa.array(sorted(pids), pa.string())
    for path in sorted(root.glob("day=*/*.parquet")):
        table = pq.read_table(path)
        hit = pc.or_(pc.is_in(table["pid"], wanted), pc.is_in(table["profile"], wanted))
        count = pc.sum(hit).as_py() or 0
        if not count:
            continue
        kept = table.filter(pc.invert(hit))
        dropped += count
        if kept.num_rows:
            _write_table(kept, path)
        else:
            path.unlink()
    return dropped


def read_archive(
    root: Path, start_day: date | None = None, end_day: date | None = None
) -> pa.Table:
    """Every archived event between the days (inclusive), each event id once."""
    tables = []
    for folder in sorted(root.glob("day=*")):
        day = date.fromisoformat(folder.name.removeprefix("day="))
        if (start_day and day < start_day) or (end_day and day > end_day):
            continue
        tables += [pq.read_table(path, schema=SCHEMA) for path in sorted(folder.glob("*.parquet"))]
    if not tables:
        return SCHEMA.empty_table()
    table = pa.concat_tables(tables)
    return _first_per_event_id(table)


def _first_per_event_id(table: pa.Table) -> pa.Table:
    ids = table.column("event_id").to_pylist()
    keep: list[int] = []
    seen: set[str] = set()
    for index, event_id in enumerate(ids):
        if event_id not in seen:
            seen.add(event_id)
            keep.append(index)
    return table if len(keep) == len(ids) else table.take(pa.array(keep))
