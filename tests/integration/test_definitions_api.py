"""Admin definitions (slots, segments): validation, CRUD, and propagation to workers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from engine.app import create_app
from engine.settings import Settings
from tests.conftest import ADMIN, SITE, client_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SLOT: dict[str, Any] = {
    "variants": [{"id": "a", "content": {"t": "A"}}, {"id": "b", "content": {"t": "B"}}],
    "default": "a",
    "policy": "rules",
    "rules": [{"when": {"attr": "context.page", "op": "eq", "value": "/sale"}, "variant": "b"}],
}


async def test_put_creates_then_replaces_and_get_returns_it(client: httpx.AsyncClient) -> None:
    first = await client.put("/v1/slots/hero", headers=ADMIN, json=SLOT)
    assert first.status_code == 201
    second = await client.put("/v1/slots/hero", headers=ADMIN, json={**SLOT, "default": "b"})
    assert second.status_code == 200
    got = await client.get("/v1/slots/hero", headers=ADMIN)
    assert got.status_code == 200
    assert got.json() == {"name": "hero", **SLOT, "default": "b"}
    listed = await client.get("/v1/slots", headers=ADMIN)
    assert listed.json() == {"slots": ["hero"]}


async def test_delete_removes_the_slot_from_decisions(client: httpx.AsyncClient) -> None:
    await client.put("/v1/slots/hero", headers=ADMIN, json=SLOT)
    assert (await client.delete("/v1/slots/hero", headers=ADMIN)).status_code == 204
    assert (await client.get("/v1/slots/hero", headers=ADMIN)).status_code == 404
    assert (await client.delete("/v1/slots/hero", headers=ADMIN)).status_code == 404
    decide = await client.post(
        "/v1/decide", headers=SITE, json={"visitor_id": "v", "slots": ["hero"]}
    )
    assert decide.status_code == 404


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"default": "zzz"}, "default"),
        ({"variants": []}, "variants"),
        ({"policy": "magic"}, "policy"),
        (
            {
                "rules": [
                    {"when": {"attr": "features.nope", "op": "eq", "value": 1}, "variant": "a"}
                ]
            },
            "rules[0].when.attr",
        ),
        (
            {
                "rules": [
                    {"when": {"attr": "context.page", "op": "like", "value": 1}, "variant": "a"}
                ]
            },
            "rules[0].when.op",
        ),
        (
            {
                "rules": [
                    {"when": {"attr": "context.page", "op": "eq", "value": "/"}, "variant": "c"}
                ]
            },
            "rules[0].variant",
        ),
        (
            {
                "rules": [
                    {
                        "when": {
                            "all": [{"attr": "features.page_views", "op": "gt", "value": "x"}]
                        },
                        "variant": "a",
                    }
                ]
            },
            "rules[0].when.all[0].value",
        ),
        ({"surprise": True}, "unknown fields"),
    ],
)
async def test_invalid_slot_is_422_with_the_path_and_stores_nothing(
    client: httpx.AsyncClient,
    redis_sync: redis.Redis,
    key_prefix: str,
    change: dict[str, Any],
    fragment: str,
) -> None:
    response = await client.put("/v1/slots/hero", headers=ADMIN, json={**SLOT, **change})
    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]
    assert list(redis_sync.scan_iter(match=f"{key_prefix}:*")) == []


async def test_bad_slot_names_and_bodies(client: httpx.AsyncClient) -> None:
    assert (await client.put("/v1/slots/Bad Name", headers=ADMIN, json=SLOT)).status_code == 422
    bad_json = await client.put("/v1/slots/hero", headers=ADMIN, content=b"{")
    assert bad_json.status_code == 400
    not_object = await client.put("/v1/slots/hero", headers=ADMIN, json=[1])
    assert not_object.status_code == 400


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), (SITE, 403), ({"X-Admin-Key": "wrong"}, 401)]
)
async def test_admin_routes_refuse_site_and_missing_keys(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    for method, path in (
        ("PUT", "/v1/slots/hero"),
        ("GET", "/v1/slots/hero"),
        ("DELETE", "/v1/slots/hero"),
        ("PUT", "/v1/segments/s"),
    ):
        response = await client.request(method, path, headers=headers, json=SLOT)
        assert response.status_code == status, (method, path)


async def test_segment_cannot_be_defined_by_segments(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/segments/loop",
        headers=ADMIN,
        json={"when": {"attr": "segments", "op": "contains", "value": "x"}},
    )
    assert response.status_code == 422


async def test_another_worker_sees_a_change_within_a_second(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    other: FastAPI = create_app(settings)  # a second worker on the same Redis
    async with other.router.lifespan_context(other), client_for(other) as other_client:
        await client.put("/v1/slots/hero", headers=ADMIN, json=SLOT)
        body = {"visitor_id": "v", "slots": ["hero"], "context": {"page": "/sale"}}
        start = time.monotonic()
        while True:
            response = await other_client.post("/v1/decide", headers=SITE, json=body)
            if response.status_code == 200:
                break
            assert time.monotonic() - start < 1.0, "second worker did not see the new slot"
            await asyncio.sleep(0.05)
        assert response.json()["decisions"][0]["variant"] == "b"
        await client.put("/v1/slots/hero", headers=ADMIN, json={**SLOT, "rules": []})
        start = time.monotonic()
        while (await other_client.post("/v1/decide", headers=SITE, json=body)).json()["decisions"][
            0
        ]["variant"] != "a":
            assert time.monotonic() - start < 1.0, "second worker kept the old rules"
            await asyncio.sleep(0.05)
