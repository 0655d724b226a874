"""Consent, export and erasure through the HTTP API, checked against what Redis holds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI

from engine.app import create_app
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from engine.store.keys import Keys
from tests.conftest import ADMIN, SECRET, SITE, client_for, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SLOT = {
    "variants": [{"id": "plain", "content": {}}, {"id": "shoes", "content": {"x": 1}}],
    "default": "plain",
    "rules": [
        {"when": {"attr": "features.views.shoes", "op": "gte", "value": 1}, "variant": "shoes"}
    ],
}


def pid(visitor_id: str) -> str:
    return Pseudonymizer(Keyring.from_secret(SECRET).pseudonyms)(visitor_id)


async def post(client: httpx.AsyncClient, *events: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/events", headers=SITE, json={"events": list(events)})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def view(visitor_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "page_view",
        "visitor_id": visitor_id,
        "item_id": "sku-1",
        "properties": {"category": "shoes"},
        **kw,
    }


async def decide(client: httpx.AsyncClient, visitor_id: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/decide", headers=SITE, json={"visitor_id": visitor_id, "slots": ["hero"]}
    )
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decisions"][0]
    return decision


async def consent(client: httpx.AsyncClient, visitor_id: str, **choices: bool) -> httpx.Response:
    return await client.put(f"/v1/visitors/{visitor_id}/consent", headers=SITE, json=choices)


def keys_mentioning(r: redis.Redis, prefix: str, pids: list[str]) -> list[bytes]:
    return [
        k
        for k in r.scan_iter(match=f"{prefix}:*", count=1000)
        if any(p.encode() in k for p in pids)
    ]


@pytest.fixture
async def with_slot(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.put("/v1/slots/hero", headers=ADMIN, json=SLOT)
    assert response.status_code in (200, 201), response.text
    return client


@pytest.fixture
async def opt_in_client(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(
        make_settings(redis_url, key_prefix, tmp_path / "d", consent_default="opt_in")
    )
    async with app.router.lifespan_context(app), client_for(app) as http:
        assert (await http.put("/v1/slots/hero", headers=ADMIN, json=SLOT)).status_code < 300
        yield http


# --- consent ------------------------------------------------------------------------


async def test_without_analytics_consent_events_are_dropped_and_only_counted(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    assert (await consent(client, "ann", analytics=False)).json() == {
        "personalization": True,
        "analytics": False,
        "chosen": True,
    }
    body = await post(client, view("ann"), view("ann"))
    assert body["accepted"] == 2
    assert body["without_consent"] == 2
    assert redis_sync.xlen(Keys(key_prefix).event_log) == 0
    assert keys_mentioning(redis_sync, key_prefix, [pid("ann")]) == [
        Keys(key_prefix).visitor(pid("ann"), "consent").encode()
    ]
    metrics = (await client.get("/metrics")).text
    assert 'omotenashi_events_dropped_total{reason="no_consent"} 2.0' in metrics


async def test_consent_is_honoured_from_the_next_request(
    with_slot: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    client = with_slot
    await post(client, view("bo"))
    assert (await decide(client, "bo"))["variant"] == "shoes"
    await consent(client, "bo", personalization=False)
    refused = await decide(client, "bo")
    assert (refused["variant"], refused["policy"]) == ("plain", "no_consent")
    # analytics still allowed: events keep counting
    await post(client, view("bo"))
    assert redis_sync.hget(Keys(key_prefix).visitor_features(pid("bo")), "page_views") == b"2"
    await consent(client, "bo", personalization=True)
    assert (await decide(client, "bo"))["policy"] == "rules"


async def test_opt_in_sites_neither_log_nor_personalize_until_the_visitor_agrees(
    opt_in_client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    client = opt_in_client
    assert (await client.get("/v1/visitors/cy/consent", headers=SITE)).json() == {
        "personalization": False,
        "analytics": False,
        "chosen": False,
    }
    assert (await post(client, view("cy")))["without_consent"] == 1
    assert (await decide(client, "cy"))["policy"] == "no_consent"
    await consent(client, "cy", personalization=True, analytics=True)
    assert (await post(client, view("cy")))["without_consent"] == 0
    assert (await decide(client, "cy"))["variant"] == "shoes"


async def test_consent_needs_a_choice_and_the_site_key(client: httpx.AsyncClient) -> None:
    assert (await consent(client, "dee")).status_code == 422
    bad = await client.put("/v1/visitors/dee/consent", headers=SITE, json={"analytics": "maybe"})
    assert bad.status_code == 422
    anonymous = await client.put("/v1/visitors/dee/consent", json={"analytics": False})
    assert anonymous.status_code == 401


# --- export and erasure -------------------------------------------------------------


async def test_export_returns_everything_stored_in_plain_json(client: httpx.AsyncClient) -> None:
    await post(
        client,
        view("web-1", event_id="w1"),
        {"type": "identify", "visitor_id": "web-1", "properties": {"customer_id": "c-9"}},
        view("c-9", channel="store"),
    )
    await consent(client, "web-1", analytics=True)
    response = await client.get("/v1/visitors/web-1", headers=ADMIN)
    assert response.status_code == 200
    data = response.json()
    assert data["visitor_pid"] == pid("web-1")
    assert data["profile"] == pid("c-9")
    assert data["merged_ids"] == [pid("web-1")]
    assert data["consent"] == {"analytics": True}
    assert data["features"]["page_views"] == 2
    assert data["features"]["views_7d.shoes"] == 2
    assert data["history"][0]["item_id"] == "sku-1"
    assert [e["event"]["type"] for e in data["events"]] == ["page_view", "identify", "page_view"]
    assert "w1" in {e["event_id"] for e in data["event_ids_seen"]}
    # nothing raw: no visitor or customer id in the export
    text = orjson.dumps(data).decode()
    assert "web-1" not in text
    assert "c-9" not in text


async def test_export_and_erase_need_the_admin_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/visitors/x", headers=SITE)).status_code == 403
    assert (await client.delete("/v1/visitors/x")).status_code == 401


async def test_erase_leaves_no_key_and_no_log_entry_of_the_person(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    await post(
        client,
        view("anon-1"),
        {"type": "identify", "visitor_id": "anon-1", "properties": {"customer_id": "cust-1"}},
        view("cust-1", channel="app"),
        view("app-7"),
        {"type": "identify", "visitor_id": "app-7", "properties": {"customer_id": "cust-1"}},
        view("someone-else"),
    )
    await consent(client, "anon-1", personalization=True)
    people = [pid("anon-1"), pid("cust-1"), pid("app-7")]
    assert keys_mentioning(redis_sync, key_prefix, people)
    response = await client.delete("/v1/visitors/anon-1", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["profile"] == pid("cust-1")
    assert body["ids_erased"] == 3
    assert body["log_entries_deleted"] == 5
    assert keys_mentioning(redis_sync, key_prefix, people) == []
    remaining = [orjson.loads(f[b"e"])["pid"] for _, f in redis_sync.xrange(keys.event_log)]
    assert remaining == [pid("someone-else")]
    assert set(redis_sync.zrange(keys.erasures, 0, -1)) == {p.encode() for p in people}
    # idempotent
    again = await client.delete("/v1/visitors/cust-1", headers=ADMIN)
    assert again.status_code == 200
    assert again.json()["keys_deleted"] == 0
    assert (await client.get("/v1/visitors/cust-1", headers=ADMIN)).json()["events"] == []


async def test_visitor_keys_expire_after_the_inactivity_period(
    client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    await post(
        client,
        view("eve"),
        {"type": "identify", "visitor_id": "eve", "properties": {"customer_id": "eve-c"}},
    )
    await consent(client, "eve", analytics=True)
    found = keys_mentioning(redis_sync, key_prefix, [pid("eve"), pid("eve-c")])
    assert len(found) >= 5
    for key in found:
        assert 0 < redis_sync.ttl(key) <= 400 * 86_400, key


async def test_a_duplicate_event_id_through_the_api_is_reported(client: httpx.AsyncClient) -> None:
    first = await post(client, view("fay", event_id="ev-1"))
    second = await post(client, view("fay", event_id="ev-1"), view("fay", ts=time.time()))
    assert first["duplicates"] == 0
    assert second["duplicates"] == 1


# --- segment report -----------------------------------------------------------------


async def test_segment_report_over_stored_profiles(client: httpx.AsyncClient) -> None:
    segment = {"when": {"attr": "features.views.shoes", "op": "gte", "value": 2}}
    assert (await client.put("/v1/segments/shoe_fans", headers=ADMIN, json=segment)).is_success
    purchase = {
        "type": "purchase",
        "visitor_id": "gus",
        "properties": {"order_id": "o1", "items": [{"item_id": "a", "price": 40.0}]},
    }
    await post(client, view("gus"), view("gus"), purchase, view("hal"))
    response = await client.get("/v1/segments/report", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["profiles"] == 2
    rows = {r["segment"]: r for r in body["segments"]}
    assert rows["all"]["conversion_rate"] == 0.5
    assert rows["shoe_fans"]["visitors"] == 1
    assert rows["shoe_fans"]["revenue_per_visitor"] == 40.0
    assert rows["shoe_fans"]["top_categories"] == ["shoes"]
    assert (await client.get("/v1/segments/report", headers=SITE)).status_code == 403
    reserved = await client.put("/v1/segments/report", headers=ADMIN, json=segment)
    assert reserved.status_code == 422


async def test_segment_report_cli_prints_the_same_rows(
    client: httpx.AsyncClient,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from engine.cli.main import main
    from tests.conftest import ADMIN_KEY, SITE_KEY

    await post(client, view("ivy"), view("jon"))
    for name, value in {
        "REDIS_URL": redis_url,
        "OMOTENASHI_KEY_PREFIX": key_prefix,
        "OMOTENASHI_SECRET": SECRET,
        "OMOTENASHI_ADMIN_KEY": ADMIN_KEY,
        "OMOTENASHI_SITE_KEYS": SITE_KEY,
        "OMOTENASHI_DATA_DIR": str(tmp_path / "cli"),
    }.items():
        monkeypatch.setenv(name, value)
    assert await anyio.to_thread.run_sync(main, ["segments", "report", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["profiles"] == 2
    assert report["segments"][0]["segment"] == "all"
    assert report["segments"][0]["top_categories"] == ["shoes"]
