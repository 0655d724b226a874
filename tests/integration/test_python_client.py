"""The Python client against the real app in process: typed results, batched events,
and retries that never duplicate an event."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI

from engine.client import EngineError, OmotenashiClient
from tests.conftest import ADMIN, ADMIN_KEY, SITE_KEY, client_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

HERO = {
    "variants": [{"id": "generic", "content": {"title": "Hi"}}, {"id": "phone"}],
    "default": "generic",
    "rules": [
        {"when": {"attr": "context.device", "op": "eq", "value": "mobile"}, "variant": "phone"}
    ],
}


class LosesFirstReplies(httpx.AsyncBaseTransport):
    """Delivers every request, but the first `lose` replies to event batches never
    arrive: the client sees a timeout for a batch the engine did take."""

    def __init__(self, inner: httpx.AsyncBaseTransport, lose: int) -> None:
        self.inner, self.lose, self.sent = inner, lose, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/v1/events":
            self.sent += 1
            if self.lose > 0:
                self.lose -= 1
                await response.aread()
                raise httpx.ReadTimeout("reply lost", request=request)
        return response


def engine_for(app: FastAPI, transport: httpx.AsyncBaseTransport | None = None) -> OmotenashiClient:
    return OmotenashiClient(
        "http://test",
        site_key=SITE_KEY,
        admin_key=ADMIN_KEY,
        transport=transport or httpx.ASGITransport(app=app),
        backoff_s=0.001,
        batch_size=3,
    )


async def test_decide_track_and_consent_through_the_client(
    app: FastAPI, redis_sync: redis.Redis, key_prefix: str
) -> None:
    async with client_for(app) as admin:
        assert (await admin.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
    async with engine_for(app) as engine:
        result = await engine.decide("v1", ["hero"], context={"device": "mobile"})
        hero = result.for_slot("hero")
        assert (hero.variant, hero.policy) == ("phone", "rules")
        generic = (await engine.decide("v2", ["hero"])).for_slot("hero")
        assert generic.content == {"title": "Hi"}
        for _ in range(4):  # the third queued event sends a batch of three
            await engine.track("page_view", "v1", properties={"category": "shoes"})
        assert engine.queued == 1
        await engine.track("click", "v1", token=hero.token)
        report = await engine.flush()
        assert report.accepted == 2
        assert engine.queued == 0
        consent = await engine.consent("v3", analytics=False)
        assert consent["analytics"] is False
        await engine.track("page_view", "v3")
        assert (await engine.flush()).without_consent == 1
        with pytest.raises(EngineError) as refused:
            await engine.decide("v1", ["no_such_slot"])
        assert refused.value.status == 404
    stream = redis_sync.xrange(f"{key_prefix}:events")
    assert len(stream) == 5  # four page views and the click of v1


async def test_a_batch_whose_reply_was_lost_is_retried_and_counted_once(
    app: FastAPI, redis_sync: redis.Redis, key_prefix: str
) -> None:
    transport = LosesFirstReplies(httpx.ASGITransport(app=app), lose=1)
    async with engine_for(app, transport) as engine:
        ids = [await engine.track("page_view", "v9") for _ in range(2)]
        report = await engine.flush()
    assert transport.sent == 2  # the batch went twice
    assert (report.accepted, report.duplicates) == (2, 2)
    stored: list[Any] = redis_sync.xrange(f"{key_prefix}:events")
    assert sorted(orjson.loads(f[b"e"])["event_id"] for _, f in stored) == sorted(ids)


async def test_a_batch_that_cannot_be_delivered_stays_queued(app: FastAPI) -> None:
    transport = LosesFirstReplies(httpx.ASGITransport(app=app), lose=10)
    engine = engine_for(app, transport)
    await engine.track("page_view", "v9")
    with pytest.raises(httpx.ReadTimeout):
        await engine.flush()
    assert engine.queued == 1  # kept, with its event id, for the next flush
    transport.lose = 0
    assert (await engine.flush()).duplicates == 1  # the engine had it already
    await engine.aclose()
