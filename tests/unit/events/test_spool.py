"""The disk spool: durable appends, replay through the write path, nothing lost."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from engine.errors import StoreUnavailable
from engine.events.spool import REPLAY_BATCH, EventSpool
from models.events import Event

pytestmark = pytest.mark.anyio


def event(i: int) -> Event:
    return Event(
        type="page_view",
        pid=f"p{i}",
        ts=1_700_000_000.0 + i,
        channel="web",
        event_id=f"e{i}",
        properties={"category": "sports"},
    )


class Sink:
    """A write path that can be told to fail after some batches."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.batches: list[list[Event]] = []
        self.fail_after = fail_after

    async def __call__(self, events: Sequence[Event]) -> None:
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise StoreUnavailable("still down")
        self.batches.append(list(events))

    @property
    def events(self) -> list[Event]:
        return [e for batch in self.batches for e in batch]


async def test_appended_events_are_replayed_in_order_and_the_file_removed(
    tmp_path: Path,
) -> None:
    spool = EventSpool(tmp_path)
    await spool.append([event(0), event(1)])
    await spool.append([event(2)])
    sink = Sink()
    assert await spool.replay(sink) == 3
    assert sink.events == [event(0), event(1), event(2)]
    assert await spool.pending_files() == 0
    await spool.append([event(3)])  # a new file after sealing
    assert await spool.replay(sink) == 1


async def test_a_failure_mid_replay_keeps_exactly_what_was_not_sent(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    events = [event(i) for i in range(REPLAY_BATCH * 2 + 7)]
    await spool.append(events)
    first = Sink(fail_after=1)
    assert await spool.replay(first) == REPLAY_BATCH
    second = Sink()
    assert await spool.replay(second) == REPLAY_BATCH + 7
    assert first.events + second.events == events


async def test_a_file_another_worker_is_writing_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "999-live.jsonl"
    path.write_bytes(orjson.dumps(event(0).to_record()) + b"\n")
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a live writer holds it
    try:
        sink = Sink()
        assert await EventSpool(tmp_path).replay(sink) == 0
        assert path.exists()
    finally:
        os.close(fd)
    assert await EventSpool(tmp_path).replay(sink) == 1  # its writer is gone: replay it


async def test_a_torn_last_line_from_a_crash_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "1-crashed.jsonl"
    good = orjson.dumps(event(0).to_record()) + b"\n"
    path.write_bytes(good + good[:20])
    sink = Sink()
    assert await EventSpool(tmp_path).replay(sink) == 1
    assert sink.events == [event(0)]


async def test_appends_are_on_disk_before_append_returns(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    await spool.append([event(5)])
    assert spooled_records(tmp_path) == [event(5).to_record()]
    await spool.aclose()


def spooled_records(directory: Path) -> list[dict[str, object]]:
    (path,) = directory.glob("*.jsonl")
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_records_that_are_json_but_not_events_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "1-odd.jsonl"
    good = orjson.dumps(event(1).to_record()) + b"\n"
    path.write_bytes(b'{"properties": [1], "type": "page_view"}\n[1, 2]\n' + good)
    sink = Sink()
    assert await EventSpool(tmp_path).replay(sink) == 1
    assert sink.events == [event(1)]
