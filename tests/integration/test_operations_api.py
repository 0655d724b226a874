"""Health, readiness, metrics, docs, and errors for routes that do not exist."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN, SITE
from tests.integration.test_decide_api import HERO

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["redis"] is True


async def test_metrics_count_routes_decisions_and_events(client: httpx.AsyncClient) -> None:
    await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)
    for _ in range(3):
        await client.post("/v1/decide", headers=SITE, json={"visitor_id": "v", "slots": ["hero"]})
    await client.post(
        "/v1/events",
        headers=SITE,
        json={
            "events": [
                {"type": "page_view", "visitor_id": "v"},
                {"type": "conversion", "visitor_id": "v", "value": 3.5},
                {"type": "bogus", "visitor_id": "v"},
            ]
        },
    )
    text = (await client.get("/metrics")).text
    assert (
        'omotenashi_http_request_duration_seconds_count{method="POST",route="/v1/decide",'
        'status="200"} 3.0' in text
    )
    assert 'omotenashi_decisions_total{policy="rules"} 3.0' in text
    assert 'omotenashi_events_total{type="page_view"} 1.0' in text
    assert 'omotenashi_events_total{type="conversion"} 1.0' in text
    assert "omotenashi_events_rejected_total 1.0" in text


async def test_unknown_routes_and_methods_get_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = await client.get("/v1/decide", headers=SITE)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    text = (await client.get("/metrics")).text
    assert 'route="unmatched"' in text


async def test_openapi_documents_the_raw_parsed_bodies(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    decide = spec["paths"]["/v1/decide"]["post"]
    ref = decide["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/DecideRequest"
    assert "visitor_id" in spec["components"]["schemas"]["DecideRequest"]["properties"]
    assert "PageView" in spec["components"]["schemas"]


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 32_768

    response = await client.post(
        "/v1/events", headers={**SITE, "Content-Type": "application/json"}, content=chunks()
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
