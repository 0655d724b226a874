"""POST /v1/events: validation by index, the event log, and real-time features."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
import pytest
import redis

from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from engine.store.keys import Keys
from tests.conftest import SECRET, SITE, SITE_KEY

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def pid(visitor_id: str) -> str:
    return Pseudonymizer(Keyring.from_secret(SECRET).pseudonyms)(visitor_id)


async def post(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    return await client.post("/v1/events", headers=SITE, json={"events": events})


def stored_features(r: redis.Redis, prefix: str, visitor_id: str) -> dict[str, str]:
    raw = r.hgetall(Keys(prefix).visitor_features(pid(visitor_id)))
    return {k.decode(): v.decode() for k, v in raw.items()}


def logged(r: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    return [orjson.loads(fields[b"e"]) for _, fields in r.xrange(Keys(prefix).event_log)]


async def test_page_views_update_features_and_the_log(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    now = time.time()
    response = await post(
        client,
        [
            {
                "type": "page_view",
                "visitor_id": "ann",
                "channel": "app",
                "ts": now - 60,
                "properties": {"category": "sports", "url": "/p/1"},
            },
            {
                "type": "page_view",
                "visitor_id": "ann",
                "channel": "web",
                "ts": now - 30,
                "properties": {"category": "sports"},
            },
            {"type": "page_view", "visitor_id": "ann", "channel": "store", "ts": now - 90},
        ],
    )
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 3,
        "rejected": [],
        "duplicates": 0,
        "without_consent": 0,
    }
    features = stored_features(redis_sync, key_prefix, "ann")
    assert features["page_views"] == "3"
    assert features["views.sports"] == "2"
    assert features["events"] == "3"
    # the latest event by time wins, whatever order the batch came in
    assert features["last_channel"] == "web"
    assert float(features["last_seen"]) == pytest.approx(now - 30)
    assert float(features["first_seen"]) == pytest.approx(now - 90)
    assert 0 < redis_sync.ttl(Keys(key_prefix).visitor_features(pid("ann"))) <= 400 * 86_400
    records = logged(redis_sync, key_prefix)
    assert [r["channel"] for r in records] == ["app", "web", "store"]
    assert all(r["pid"] == pid("ann") for r in records)


async def test_late_event_does_not_overwrite_newer_last_channel(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    now = time.time()
    await post(client, [{"type": "page_view", "visitor_id": "bo", "channel": "app", "ts": now}])
    await post(
        client, [{"type": "page_view", "visitor_id": "bo", "channel": "email", "ts": now - 3600}]
    )
    features = stored_features(redis_sync, key_prefix, "bo")
    assert features["last_channel"] == "app"
    assert features["page_views"] == "2"


async def test_invalid_events_are_reported_by_index_and_valid_ones_kept(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    response = await post(
        client,
        [
            {"type": "page_view", "visitor_id": "cy"},
            {"type": "teleport", "visitor_id": "cy"},
            {"type": "feedback", "visitor_id": "cy", "properties": {"rating": 9}},
            {"type": "click", "visitor_id": "cy", "token": "1.forged.token"},
            {
                "type": "purchase",
                "visitor_id": "cy",
                "properties": {
                    "order_id": "o1",
                    "items": [{"item_id": "i1", "price": 10, "qty": 2}],
                },
            },
        ],
    )
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    assert "teleport" in body["rejected"][0]["error"]
    assert "rating" in body["rejected"][1]["error"]
    assert "token" in body["rejected"][2]["error"]
    records = logged(redis_sync, key_prefix)
    assert [r["type"] for r in records] == ["page_view", "purchase"]
    assert records[1]["value"] == 20.0


async def test_a_batch_with_no_valid_event_is_422_and_stores_nothing(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    response = await post(client, [{"type": "page_view"}, {"type": "nope", "visitor_id": "x"}])
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert [d["index"] for d in error["details"]] == [0, 1]
    assert list(redis_sync.scan_iter(match=f"{key_prefix}:*")) == []


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"[1, 2]", 400), (b'{"events": {}}', 400), (b"nope", 400), (b'{"events": [], "x": 1}', 400)],
)
async def test_malformed_batches_are_400(
    client: httpx.AsyncClient,
    redis_sync: redis.Redis,
    key_prefix: str,
    content: bytes,
    status: int,
) -> None:
    response = await client.post("/v1/events", headers=SITE, content=content)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "malformed_request"
    assert list(redis_sync.scan_iter(match=f"{key_prefix}:*")) == []


async def test_too_many_events_or_bytes_are_413(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    event = {"type": "page_view", "visitor_id": "d"}
    response = await post(client, [event] * 501)
    assert response.status_code == 413
    big = {"type": "page_view", "visitor_id": "d", "properties": {"url": "u" * 2048}}
    response = await post(client, [big] * 500)  # over the 1 MiB body limit
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert list(redis_sync.scan_iter(match=f"{key_prefix}:*")) == []


async def test_raw_ids_are_never_stored(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    response = await post(
        client,
        [
            {"type": "page_view", "visitor_id": "alice@example.com"},
            {
                "type": "identify",
                "visitor_id": "alice@example.com",
                "properties": {"customer_id": "CRM-12345", "traits": {"region": "kanto"}},
            },
            {
                "type": "feedback",
                "visitor_id": "alice@example.com",
                "properties": {"rating": 4, "text": "my phone is 555-0100"},
            },
        ],
    )
    assert response.status_code == 202
    dump = b""
    for key in redis_sync.scan_iter(match=f"{key_prefix}:*"):
        dump += key
        if redis_sync.type(key) == b"hash":
            dump += b"".join(k + v for k, v in redis_sync.hgetall(key).items())
        elif redis_sync.type(key) == b"stream":
            dump += b"".join(f[b"e"] for _, f in redis_sync.xrange(key))
    assert b"alice" not in dump
    assert b"CRM-12345" not in dump
    assert b"555-0100" not in dump
    identify = logged(redis_sync, key_prefix)[1]
    assert identify["properties"]["customer_pid"] == pid("CRM-12345")


async def test_events_need_a_site_key(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"events": []})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_beacon_sends_the_site_key_in_the_query_and_plain_text(
    client: httpx.AsyncClient,
) -> None:
    """navigator.sendBeacon can set neither headers nor a JSON content type."""
    body = orjson.dumps({"events": [{"type": "page_view", "visitor_id": "beacon"}]})
    headers = {"content-type": "text/plain;charset=UTF-8"}
    response = await client.post(
        "/v1/events", params={"site_key": SITE_KEY}, content=body, headers=headers
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    wrong = await client.post("/v1/events", params={"site_key": "nope"}, content=body)
    assert wrong.status_code == 401


async def test_a_browser_page_of_a_foreign_origin_cannot_send_events(
    client: httpx.AsyncClient,
) -> None:
    """CORS does not stop a beacon; the Origin check does."""
    body = orjson.dumps({"events": [{"type": "page_view", "visitor_id": "o1"}]})
    params = {"site_key": SITE_KEY}
    foreign = await client.post(
        "/v1/events", params=params, content=body, headers={"origin": "http://evil.test"}
    )
    assert foreign.status_code == 403
    assert "origin http://evil.test is not allowed" in foreign.json()["error"]["message"]
    same = await client.post(
        "/v1/events", params=params, content=body, headers={"origin": "http://test"}
    )
    assert same.status_code == 202  # the engine's own pages (the demo)
    server = await client.post("/v1/events", params=params, content=body)
    assert server.status_code == 202  # no Origin: a server or an app
