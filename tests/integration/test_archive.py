"""The archiver: stream entries into day-partitioned Parquet, exactly once, erasures honoured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import anyio
import orjson
import pyarrow.parquet as pq
import pytest
import redis

from engine.cli.main import main
from engine.events import archive
from engine.events.archive import archive_once, read_archive
from engine.store.client import Store, connect
from engine.store.keys import Keys
from tests.conftest import ADMIN_KEY, SECRET, SITE_KEY

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DAY1 = 1_700_000_000.0  # 2023-11-14
DAY2 = DAY1 + 86_400


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[Store]:
    s = Store(connect(redis_url, 2000), Keys(key_prefix))
    yield s
    await s.close()


def log(r: redis.Redis, prefix: str, event_id: str, ts: float, pid: str = "p1") -> None:
    record = {"type": "page_view", "pid": pid, "ts": ts, "channel": "web", "event_id": event_id}
    r.xadd(Keys(prefix).event_log, {"e": orjson.dumps(record), "p": pid})


def archived_rows(root: Path) -> int:
    return sum(pq.read_table(f).num_rows for f in root.glob("day=*/*.parquet"))


def ids(root: Path) -> list[str]:
    return sorted(read_archive(root).column("event_id").to_pylist())


async def test_entries_move_into_day_partitions(
    store: Store, redis_sync: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    for n in range(3):
        log(redis_sync, key_prefix, f"a{n}", DAY1 + n)
    log(redis_sync, key_prefix, "b0", DAY2)
    run = await archive_once(store, tmp_path)
    assert (run.entries, run.rows_written, len(run.files_written)) == (4, 4, 2)
    assert sorted(p.parent.name for p in run.files_written) == [
        "day=2023-11-14",
        "day=2023-11-15",
    ]
    assert redis_sync.xlen(Keys(key_prefix).event_log) == 0
    table = read_archive(tmp_path, start_day=date(2023, 11, 15))
    assert table.column("event_id").to_pylist() == ["b0"]
    assert table.column("profile").to_pylist() == ["p1"]
    again = await archive_once(store, tmp_path)
    assert (again.entries, again.files_written) == (0, [])


async def test_a_crash_between_write_and_ack_duplicates_nothing(
    store: Store,
    redis_sync: redis.Redis,
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(5):
        log(redis_sync, key_prefix, f"e{n}", DAY1 + n)
    real_write = archive._write_batch

    def write_then_crash(*args: object) -> None:
        real_write(*args)  # type: ignore[arg-type]
        raise RuntimeError("killed after the file was written, before the ack")

    monkeypatch.setattr(archive, "_write_batch", write_then_crash)
    with pytest.raises(RuntimeError):
        await archive_once(store, tmp_path)
    assert redis_sync.xlen(Keys(key_prefix).event_log) == 5  # not acknowledged
    monkeypatch.setattr(archive, "_write_batch", real_write)
    run = await archive_once(store, tmp_path)
    assert (run.entries, run.duplicates_skipped, run.rows_written) == (5, 5, 0)
    assert archived_rows(tmp_path) == 5
    assert ids(tmp_path) == [f"e{n}" for n in range(5)]
    assert redis_sync.xlen(Keys(key_prefix).event_log) == 0


async def test_an_event_logged_twice_is_archived_once(
    store: Store, redis_sync: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    log(redis_sync, key_prefix, "same", DAY1)
    await archive_once(store, tmp_path)
    log(redis_sync, key_prefix, "same", DAY1)
    log(redis_sync, key_prefix, "other", DAY1)
    run = await archive_once(store, tmp_path)
    assert run.duplicates_skipped == 1
    assert ids(tmp_path) == ["other", "same"]


async def test_erased_visitors_leave_the_archive_at_the_next_run(
    store: Store, redis_sync: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    log(redis_sync, key_prefix, "x1", DAY1, pid="gone")
    log(redis_sync, key_prefix, "x2", DAY2, pid="gone")
    log(redis_sync, key_prefix, "k1", DAY1, pid="kept")
    await archive_once(store, tmp_path)
    redis_sync.zadd(Keys(key_prefix).erasures, {"gone": DAY2})
    run = await archive_once(store, tmp_path)
    assert run.erased_rows_dropped == 2
    assert ids(tmp_path) == ["k1"]
    assert not list((tmp_path / "day=2023-11-15").glob("*.parquet"))  # emptied file removed
    assert redis_sync.zcard(Keys(key_prefix).erasures) == 0


def test_the_cli_archives_and_says_what_it_did(
    redis_url: str,
    redis_sync: redis.Redis,
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
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
    log(redis_sync, key_prefix, "c1", DAY1)
    assert main(["archive", "--dir", str(tmp_path / "arch")]) == 0
    assert "archived 1 log entries" in capsys.readouterr().out
    assert ids(tmp_path / "arch") == ["c1"]


async def test_the_app_archives_in_the_background_when_asked(
    redis_url: str, redis_sync: redis.Redis, key_prefix: str, tmp_path: Path
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
    log(redis_sync, key_prefix, "bg1", DAY1)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if redis_sync.xlen(Keys(key_prefix).event_log) == 0:
                break
            await anyio.sleep(0.05)
    assert ids(tmp_path / "arch") == ["bg1"]
