"""When Redis goes away, decide still answers (defaults, policy "fallback"), readiness
says so, and service resumes when Redis is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from engine.app import RECS_SNAPSHOT_FILE, create_app
from tests.conftest import ADMIN, SECRET, SITE, client_for, make_settings
from tests.integration.test_decide_api import HERO
from tests.support.recs_artifacts import fit_als, planted_data, wait_for_recs, write_recs
from tests.support.redis_server import RedisProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

BODY = {"visitor_id": "v", "slots": ["hero"], "context": {"device": "mobile"}}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis of this test's own, so stopping it disturbs nobody else."""
    server = RedisProcess.start(tmp_path)
    yield server
    server.stop()


def logged_types(client: redis.Redis) -> list[str]:
    return [orjson.loads(f[b"e"])["type"] for _, f in client.xrange("outage:events")]


async def decide(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/v1/decide", headers=SITE, json=BODY)


async def test_decide_falls_back_to_defaults_while_redis_is_down(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    settings = make_settings(own_redis.url, "outage", tmp_path / "data")
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
        up = await decide(client)
        assert up.json()["decisions"][0]["variant"] == "mobile"

        own_redis.stop()
        down = await decide(client)
        assert down.status_code == 200
        decision = down.json()["decisions"][0]
        assert (decision["variant"], decision["policy"]) == ("generic", "fallback")
        assert decision["content"] == {"title": "Welcome"}
        assert decision["token"]
        assert (await client.get("/readyz")).status_code == 503
        events = await client.post(
            "/v1/events",
            headers=SITE,
            json={
                "events": [
                    {"type": "page_view", "visitor_id": "v", "properties": {"category": "sports"}}
                ]
                * 3
            },
        )
        assert events.status_code == 202
        assert events.json() == {"accepted": 3, "rejected": [], "spooled": 3}
        metrics = (await client.get("/metrics")).text
        assert 'omotenashi_decisions_total{policy="fallback"} 1.0' in metrics
        assert 'omotenashi_redis_errors_total{operation="read_features"} 1.0' in metrics

        restarted = RedisProcess.start(own_redis.workdir, port=own_redis.port)
        try:
            # a fresh Redis has no definitions: put the slot back, then decisions resume
            for _ in range(40):
                put = await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)
                if put.status_code != 503:
                    break
                await asyncio.sleep(0.1)  # the circuit stays open for a moment
            assert put.status_code == 201
            # the spooled events reach Redis once it answers again: none lost
            restored = redis.Redis.from_url(restarted.url)
            try:
                for _ in range(100):
                    if logged_types(restored).count("page_view") == 3:
                        break
                    await asyncio.sleep(0.1)
                # the three events, and the decision made before Redis went away: the
                # decision log kept it in memory and wrote it once Redis was back
                assert sorted(logged_types(restored)) == ["decision", *["page_view"] * 3]
            finally:
                restored.close()
            again = await decide(client)
            assert again.json()["decisions"][0]["variant"] == "sporty"  # features replayed
            assert (await client.get("/readyz")).json()["checks"]["spooled_files"] == 0
            metrics = (await client.get("/metrics")).text
            assert "omotenashi_events_spooled_total 3.0" in metrics
            assert "omotenashi_events_replayed_total 3.0" in metrics
        finally:
            restarted.stop()


async def test_a_worker_starting_while_redis_is_down_serves_the_snapshot(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = create_app(make_settings(own_redis.url, "snap", data_dir))
    async with first.router.lifespan_context(first), client_for(first) as client:
        assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    second = create_app(make_settings(nowhere, "snap", data_dir))
    async with second.router.lifespan_context(second), client_for(second) as client:
        response = await decide(client)
        assert response.status_code == 200
        assert response.json()["decisions"][0]["policy"] == "fallback"


async def test_a_worker_starting_while_redis_is_down_recommends_from_the_snapshot(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    """The last active recommender and catalogue a worker saw are kept on disk: a worker
    started during an outage answers with popular, available items, labelled fallback."""
    data = planted_data()
    version = write_recs(tmp_path / "artifacts", data, fit_als(data), SECRET)
    settings = {"artifacts_dir": tmp_path / "artifacts", "models_refresh_ms": 100}
    data_dir = tmp_path / "data"
    unavailable = set(data.item_ids[::4])
    catalogue = [
        {
            "item_id": item,
            "category": data.category_of(item),
            "price": 1.0,
            "available": item not in unavailable,
        }
        for item in data.item_ids
    ]
    first = create_app(make_settings(own_redis.url, "recsnap", data_dir, **settings))
    async with first.router.lifespan_context(first), client_for(first) as client:
        assert (await client.put("/v1/items", headers=ADMIN, json={"items": catalogue})).is_success
        activated = await client.post(f"/v1/models/recs/{version}/activate", headers=ADMIN)
        assert activated.status_code == 200
        await wait_for_recs(first, version)
        served = await client.get(
            "/v1/recommendations", headers=SITE, params={"visitor_id": "nobody", "n": 5}
        )
    assert (data_dir / RECS_SNAPSHOT_FILE).is_file()

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    second = create_app(make_settings(nowhere, "recsnap", data_dir, **settings))
    async with second.router.lifespan_context(second), client_for(second) as client:
        await wait_for_recs(second, version)
        response = await client.get(
            "/v1/recommendations", headers=SITE, params={"visitor_id": "nobody", "n": 5}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["policy"], body["model_version"]) == ("fallback", version)
    items = [item["item_id"] for item in body["items"]]
    assert len(items) == 5
    assert not set(items) & unavailable
    assert items == [item["item_id"] for item in served.json()["items"]]  # the same popular list


async def test_no_redis_and_no_snapshot_is_503_not_a_crash(tmp_path: Path) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(nowhere, "cold", tmp_path / "data"))
    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await decide(client)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "definitions_not_loaded"
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        recs = await client.get("/v1/recommendations", headers=SITE, params={"visitor_id": "v"})
        assert recs.status_code == 503
        assert "Redis unreachable since the worker started" in recs.json()["error"]["message"]
