"""A log that loses nothing: Redis is killed while events pour in through the HTTP API,
comes back, and every event is found exactly once in the stream plus the archive."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from engine.app import create_app
from engine.events.archive import archive_once, read_archive
from engine.store.client import Store, connect
from engine.store.keys import Keys
from tests.conftest import SITE, client_for, make_settings
from tests.support.redis_server import RedisProcess

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.slow]

N_EVENTS = 1200
BATCH = 20
PREFIX = "fault"


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis of this test's own, which keeps what it acknowledged across a kill."""
    (tmp_path / "redis").mkdir()
    server = RedisProcess.start(tmp_path / "redis", durable=True)
    yield server
    server.stop()


def batch(start: int) -> list[dict[str, object]]:
    return [
        {
            "type": "page_view",
            "visitor_id": f"v{n % 37}",
            "event_id": f"ev-{n}",
            "properties": {"category": "shoes"},
        }
        for n in range(start, start + BATCH)
    ]


async def test_every_event_lands_exactly_once_across_a_redis_crash(
    durable_redis: RedisProcess, tmp_path: Path
) -> None:
    app = create_app(make_settings(durable_redis.url, PREFIX, tmp_path / "data"))
    archive_dir = tmp_path / "archive"
    store = Store(connect(durable_redis.url, 2000), Keys(PREFIX))
    spooled = 0
    killed = asyncio.Event()

    async def poster(client: httpx.AsyncClient, starts: Iterator[int]) -> None:
        nonlocal spooled
        for start in starts:
            response = await client.post("/v1/events", headers=SITE, json={"events": batch(start)})
            assert response.status_code == 202, response.text
            spooled += response.json().get("spooled", 0)
            if start >= N_EVENTS // 2 and not killed.is_set():
                killed.set()
                durable_redis.kill()  # mid-stream: other posters have requests in flight

    async with app.router.lifespan_context(app), client_for(app) as client:
        first = iter(range(0, N_EVENTS // 4, BATCH))
        await asyncio.gather(*(poster(client, first) for _ in range(4)))
        await archive_once(store, archive_dir)  # the first quarter moves to the archive
        rest = iter(range(N_EVENTS // 4, N_EVENTS, BATCH))
        await asyncio.gather(*(poster(client, rest) for _ in range(4)))
        assert spooled > 0, "the outage should have sent some events to the spool"
        restarted = RedisProcess.start(durable_redis.workdir, durable_redis.port, durable=True)
        durable_redis.process = restarted.process
        for _ in range(300):  # the app's replayer sends the spool on once Redis answers
            ready = (await client.get("/readyz")).json()
            if ready["status"] == "ready" and ready["checks"]["spooled_events"] == 0:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"spool never drained: {ready}")
    await store.close()

    store = Store(connect(durable_redis.url, 2000), Keys(PREFIX))
    try:
        await archive_once(store, archive_dir)  # more of it moves to the archive
    finally:
        await store.close()
    r = redis.Redis.from_url(durable_redis.url)
    in_stream = [orjson.loads(f[b"e"])["event_id"] for _, f in r.xrange(Keys(PREFIX).event_log)]
    r.close()
    in_archive = read_archive(archive_dir).column("event_id").to_pylist()
    counts = Counter(in_stream + in_archive)
    assert set(counts) == {f"ev-{n}" for n in range(N_EVENTS)}
    assert max(counts.values()) == 1
    files = list(archive_dir.glob("day=*/*.parquet"))
    assert sum(1 for _ in files) >= 1
