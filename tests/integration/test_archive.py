"""The archiver: stream entries into day-partitioned Parquet, exactly once, erasures honoured."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import orjson
import pyarrow.parquet as pq
import pytest
import redis

from engine.cli.main import main
from engine.events import archive
from engine.events.archive import ArchiveBusy, archive_once, read_archive
from engine.store.client import Store, connect
from engine.store.keys import ARCHIVE_GROUP, Keys
from tests.conftest import ADMIN_KEY, SECRET, SITE_KEY

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DAY1 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DAY2 = DAY1 + 86_400
MIDNIGHT = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[Store]:
    s = Store(connect(redis_url, 2000), Keys(key_prefix))
    yield s
    await s.close()


@pytest.fixture
def stream(key_prefix: str) -> str:
    return Keys(key_prefix).event_log


def log(
    r: redis.Redis, stream: str, event_id: str, ts: float, pid: str = "p1", **extra: Any
) -> str:
    """Append an entry the way the ingest script does (`e`: event record, `p`: profile)."""
    profile = extra.pop("profile", pid)
    record = {"type": "page_view", "pid": pid, "ts": ts, "channel": "web", "event_id": event_id}
    stream_id: bytes = r.xadd(stream, {"e": orjson.dumps(record | extra), "p": profile})
    return stream_id.decode()


def archived_rows(root: Path) -> int:
    return sum(pq.read_table(f).num_rows for f in root.glob("day=*/*.parquet"))


def ids(root: Path) -> list[str]:
    return sorted(read_archive(root).column("event_id").to_pylist())


def files(root: Path) -> list[Path]:
    return sorted(root.glob("day=*/*"))


def pending(r: redis.Redis, stream: str) -> int:
    count: int = r.xpending(stream, ARCHIVE_GROUP)["pending"]
    return count


async def test_entries_move_into_day_partitions_with_every_field(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    first = log(
        redis_sync,
        stream,
        "a0",
        DAY1,
        pid="visitor",
        profile="customer",
        type="purchase",
        channel="app",
        token="tok",
        item_id="sku-1",
        value=12.5,
        properties={"currency": "EUR", "items": [{"item_id": "sku-1", "qty": 1}]},
    )
    for n in (1, 2):
        log(redis_sync, stream, f"a{n}", DAY1 + n)
    last = log(redis_sync, stream, "b0", DAY2)

    run = await archive_once(store, tmp_path)

    assert (run.entries, run.rows_written, run.duplicates_skipped) == (4, 4, 0)
    assert sorted(p.parent.name for p in run.files_written) == ["day=2023-11-14", "day=2023-11-15"]
    names = sorted(p.name for p in run.files_written)
    assert all(re.fullmatch(r"part-\d+_\d+-\d+_\d+\.parquet", name) for name in names)
    assert names[0].startswith(f"part-{first.replace('-', '_')}-")  # a0 .. a2
    assert names[1] == f"part-{last.replace('-', '_')}-{last.replace('-', '_')}.parquet"
    assert redis_sync.xlen(stream) == 0
    assert pending(redis_sync, stream) == 0
    row = read_archive(tmp_path).to_pylist()[0]
    assert row == {
        "stream_id": first,
        "event_id": "a0",
        "type": "purchase",
        "pid": "visitor",
        "profile": "customer",
        "ts": DAY1,
        "channel": "app",
        "token": "tok",
        "item_id": "sku-1",
        "value": 12.5,
        "properties": '{"currency":"EUR","items":[{"item_id":"sku-1","qty":1}]}',
    }
    plain = read_archive(tmp_path, start_day=date(2023, 11, 15)).to_pylist()
    assert [(r["event_id"], r["token"], r["value"], r["properties"]) for r in plain] == [
        ("b0", None, None, "{}")
    ]


async def test_a_second_run_with_nothing_new_writes_nothing(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    log(redis_sync, stream, "a0", DAY1)
    await archive_once(store, tmp_path)
    before = files(tmp_path)

    again = await archive_once(store, tmp_path)

    assert (again.entries, again.rows_written, again.files_written) == (0, 0, [])
    assert files(tmp_path) == before


async def test_events_either_side_of_midnight_utc_go_to_two_partitions(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    log(redis_sync, stream, "late", MIDNIGHT - 0.001)
    log(redis_sync, stream, "early", MIDNIGHT)

    await archive_once(store, tmp_path)

    assert read_archive(tmp_path, end_day=date(2023, 11, 14)).column("event_id").to_pylist() == [
        "late"
    ]
    assert read_archive(tmp_path, start_day=date(2023, 11, 15)).column("event_id").to_pylist() == [
        "early"
    ]


async def test_a_crash_between_write_and_ack_duplicates_nothing(
    store: Store,
    redis_sync: redis.Redis,
    stream: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(5):
        log(redis_sync, stream, f"e{n}", DAY1 + n)
    real_ack = archive._acknowledge
    calls = 0

    async def crash_once(store: Store, ids: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("killed after the file was written, before the ack")
        await real_ack(store, ids)

    monkeypatch.setattr(archive, "_acknowledge", crash_once)
    with pytest.raises(RuntimeError):
        await archive_once(store, tmp_path)
    assert archived_rows(tmp_path) == 5  # durable on disk ...
    assert (redis_sync.xlen(stream), pending(redis_sync, stream)) == (5, 5)  # ... not acked

    run = await archive_once(store, tmp_path)

    assert (run.entries, run.duplicates_skipped, run.rows_written, run.files_written) == (
        5,
        5,
        0,
        [],
    )
    assert archived_rows(tmp_path) == 5
    assert ids(tmp_path) == [f"e{n}" for n in range(5)]
    assert (redis_sync.xlen(stream), pending(redis_sync, stream)) == (0, 0)


async def test_a_temp_file_left_by_a_crash_mid_write_is_cleared(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    torn = tmp_path / "day=2023-11-14" / "part-1_0-2_0.parquet.tmp"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b"PAR1 half a file")
    log(redis_sync, stream, "e0", DAY1)

    await archive_once(store, tmp_path)

    assert not torn.exists()
    assert ids(tmp_path) == ["e0"]


async def test_an_event_logged_twice_is_archived_once(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    log(redis_sync, stream, "same", DAY1)
    await archive_once(store, tmp_path)
    log(redis_sync, stream, "same", DAY1)  # again in a later run
    log(redis_sync, stream, "other", DAY1)
    log(redis_sync, stream, "other", DAY1)  # twice in one batch

    run = await archive_once(store, tmp_path)

    assert (run.entries, run.rows_written, run.duplicates_skipped) == (3, 1, 2)
    assert archived_rows(tmp_path) == 2
    assert ids(tmp_path) == ["other", "same"]


async def test_reading_the_archive_keeps_an_event_id_once_across_days(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    log(redis_sync, stream, "twice", DAY1)
    log(redis_sync, stream, "twice", DAY2)  # write-time dedupe is per day

    await archive_once(store, tmp_path)

    assert archived_rows(tmp_path) == 2
    assert read_archive(tmp_path).column("ts").to_pylist() == [DAY1]


async def test_erased_visitors_leave_the_archive_at_the_next_run(
    store: Store, redis_sync: redis.Redis, stream: str, key_prefix: str, tmp_path: Path
) -> None:
    log(redis_sync, stream, "x1", DAY1, pid="gone")
    log(redis_sync, stream, "x2", DAY2, pid="gone")
    log(redis_sync, stream, "m1", DAY1, pid="merged", profile="gone-profile")
    log(redis_sync, stream, "k1", DAY1, pid="kept")
    await archive_once(store, tmp_path)
    erasures = Keys(key_prefix).erasures
    redis_sync.zadd(erasures, {"gone": DAY2, "gone-profile": DAY2})

    run = await archive_once(store, tmp_path)

    assert run.erased_rows_dropped == 3
    assert ids(tmp_path) == ["k1"]
    assert not list((tmp_path / "day=2023-11-15").glob("*.parquet"))  # emptied file removed
    assert redis_sync.zcard(erasures) == 0


async def test_an_erasure_arriving_during_compaction_waits_for_the_next_run(
    store: Store,
    redis_sync: redis.Redis,
    stream: str,
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    erasures = Keys(key_prefix).erasures
    redis_sync.zadd(erasures, {"early": 1.0, "again": 1.0})
    real_drop = archive._drop_erased

    def drop_while_more_arrive(root: Path, pids: set[str]) -> int:
        redis_sync.zadd(erasures, {"late": 3.0, "again": 2.0})  # "again": erased once more
        return real_drop(root, pids)

    monkeypatch.setattr(archive, "_drop_erased", drop_while_more_arrive)

    await archive_once(store, tmp_path)

    assert redis_sync.zrange(erasures, 0, -1, withscores=True) == [(b"again", 2.0), (b"late", 3.0)]


async def test_pending_entries_erased_from_the_stream_are_acknowledged(
    store: Store, redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    redis_sync.xgroup_create(stream, ARCHIVE_GROUP, id="0", mkstream=True)
    erased = log(redis_sync, stream, "erased", DAY1)
    log(redis_sync, stream, "kept", DAY1)
    redis_sync.xreadgroup(ARCHIVE_GROUP, archive.CONSUMER, {stream: ">"})  # then a crash
    redis_sync.xdel(stream, erased)

    run = await archive_once(store, tmp_path)

    assert run.entries == 1
    assert ids(tmp_path) == ["kept"]
    assert (redis_sync.xlen(stream), pending(redis_sync, stream)) == (0, 0)


async def test_a_run_ends_while_events_keep_arriving(
    store: Store,
    redis_sync: redis.Redis,
    stream: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(4):
        log(redis_sync, stream, f"old{n}", DAY1)
    monkeypatch.setattr(archive, "READ_COUNT", 1)
    real_write = archive._write_batch
    arrivals = iter(range(50))  # an unbounded run would read all 54

    def write_while_logging(*args: Any) -> None:
        n = next(arrivals, None)
        if n is not None:
            log(redis_sync, stream, f"new{n}", DAY1)
        real_write(*args)

    monkeypatch.setattr(archive, "_write_batch", write_while_logging)

    run = await archive_once(store, tmp_path)

    assert run.entries == 4
    assert ids(tmp_path) == [f"old{n}" for n in range(4)]
    assert redis_sync.xlen(stream) == 4  # what arrived meanwhile waits for the next run


@pytest.fixture
def locked_folder(tmp_path: Path) -> Iterator[Path]:
    """The archive folder as another process's archiver holds it."""
    fd = os.open(tmp_path / archive.LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield tmp_path
    os.close(fd)


async def test_a_second_archiver_on_the_same_folder_is_refused(
    store: Store, redis_sync: redis.Redis, stream: str, locked_folder: Path
) -> None:
    log(redis_sync, stream, "e0", DAY1)

    with pytest.raises(ArchiveBusy):
        await archive_once(store, locked_folder)

    assert redis_sync.xlen(stream) == 1


@pytest.fixture
def cli_env(
    redis_url: str, key_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "REDIS_URL": redis_url,
        "OMOTENASHI_KEY_PREFIX": key_prefix,
        "OMOTENASHI_SECRET": SECRET,
        "OMOTENASHI_ADMIN_KEY": ADMIN_KEY,
        "OMOTENASHI_SITE_KEYS": SITE_KEY,
        "OMOTENASHI_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("cli_env")
def test_the_cli_archives_and_says_what_it_did(
    redis_sync: redis.Redis, stream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log(redis_sync, stream, "c1", DAY1)
    log(redis_sync, stream, "c2", DAY2)

    assert main(["archive", "--dir", str(tmp_path / "arch")]) == 0

    out = capsys.readouterr().out
    assert "archived 2 log entries" in out
    assert "2 rows in 2 files, 0 duplicates skipped, 0 rows of erased visitors dropped" in out
    assert ids(tmp_path / "arch") == ["c1", "c2"]


@pytest.mark.usefixtures("cli_env")
def test_the_cli_archives_into_data_dir_by_default(
    redis_sync: redis.Redis, stream: str, tmp_path: Path
) -> None:
    log(redis_sync, stream, "c1", DAY1)

    assert main(["archive"]) == 0

    assert ids(tmp_path / "data" / "archive") == ["c1"]


@pytest.mark.usefixtures("cli_env")
def test_the_cli_says_so_when_another_archiver_is_busy(
    locked_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["archive", "--dir", str(locked_folder)]) == 1

    assert "another archiver is working on" in capsys.readouterr().err


async def test_the_app_archives_in_the_background_when_asked(
    redis_url: str, redis_sync: redis.Redis, stream: str, key_prefix: str, tmp_path: Path
) -> None:
    from engine.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        redis_url,
        key_prefix,
        tmp_path / "data",
        archive_interval_s=0.1,
        archive_dir=tmp_path / "arch",
    )
    log(redis_sync, stream, "bg1", DAY1)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if redis_sync.xlen(stream) == 0:
                break
            await anyio.sleep(0.05)
    assert ids(tmp_path / "arch") == ["bg1"]
