"""A slot with the `bandit` policy over HTTP and the real Redis: outcomes count once per
decision through the token, and Thompson sampling converges to each segment's best
variant on simulated traffic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import redis
from fastapi import FastAPI

from engine.settings import Settings
from tests.conftest import ADMIN, SITE, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MOBILE = {"attr": "context.device", "op": "eq", "value": "mobile"}
# The truth the bandit must find: phones click b, everyone else clicks a.
CLICK_RATES = {
    "mobile": {"a": 0.04, "b": 0.30, "c": 0.10},
    "desktop": {"a": 0.30, "b": 0.04, "c": 0.10},
}
BEST = {"mobile": "b", "desktop": "a"}


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    # the test refreshes the posteriors itself, at fixed points: the run is deterministic
    return make_settings(redis_url, key_prefix, tmp_path / "data", bandit_refresh_ms=60_000)


async def define(client: httpx.AsyncClient, reward: str = "click") -> None:
    response = await client.put("/v1/segments/phones", headers=ADMIN, json={"when": MOBILE})
    assert response.status_code == 201, response.text
    slot = {
        "variants": [{"id": v, "content": {"title": v}} for v in ("a", "b", "c")],
        "default": "c",
        "policy": "bandit",
        "bandit": {"segments": ["phones"], "reward": reward},
    }
    response = await client.put("/v1/slots/hero", headers=ADMIN, json=slot)
    assert response.status_code == 201, response.text


async def refresh(app: FastAPI) -> None:
    services = app.state.services
    await services.bandits.refresh(services.registry.current.slots)


async def decide(client: httpx.AsyncClient, visitor: str, device: str) -> dict[str, Any]:
    body = {"visitor_id": visitor, "slots": ["hero"], "context": {"device": device}}
    response = await client.post("/v1/decide", headers=SITE, json=body)
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decisions"][0]
    return decision


async def post(client: httpx.AsyncClient, *events: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/events", headers=SITE, json={"events": list(events)})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def counters(redis_sync: redis.Redis, key_prefix: str) -> dict[str, int]:
    raw: Any = redis_sync.hgetall(f"{key_prefix}:bandit:hero")
    return {k.decode(): int(v) for k, v in raw.items()}


async def test_before_its_posteriors_are_read_the_slot_decides_by_rules(
    client: httpx.AsyncClient,
) -> None:
    await define(client)
    decision = await decide(client, "v1", "mobile")
    assert (decision["variant"], decision["policy"]) == ("c", "rules")


async def test_outcomes_count_once_per_decision_and_only_with_consent(
    app: FastAPI, client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    await define(client)
    await refresh(app)
    d = await decide(client, "v1", "mobile")
    assert d["policy"] == "bandit"
    seen = {"visitor_id": "v1", "token": d["token"]}
    await post(client, {**seen, "type": "impression"}, {**seen, "type": "impression"})
    await post(client, {**seen, "type": "click"}, {**seen, "type": "click"})
    await post(client, {**seen, "type": "conversion", "value": 5.0})  # not this slot's reward
    variant = d["variant"]
    assert counters(redis_sync, key_prefix) == {f"t:phones:{variant}": 1, f"s:phones:{variant}": 1}

    # a click without its impression still counts the trial: a lost impression must not
    # make the arm look better than it is
    other = await decide(client, "v2", "desktop")
    await post(client, {"visitor_id": "v2", "token": other["token"], "type": "click"})

    # someone else's token counts nothing
    await post(client, {"visitor_id": "v3", "token": d["token"], "type": "click"})
    # no analytics consent: the events are dropped and nothing counts
    response = await client.put("/v1/visitors/v4/consent", headers=SITE, json={"analytics": False})
    assert response.status_code == 200
    quiet = await decide(client, "v4", "mobile")
    body = await post(client, {"visitor_id": "v4", "token": quiet["token"], "type": "click"})
    assert body["without_consent"] == 1
    assert counters(redis_sync, key_prefix) == {
        f"t:phones:{variant}": 1,
        f"s:phones:{variant}": 1,
        f"t:_:{other['variant']}": 1,
        f"s:_:{other['variant']}": 1,
    }
    # deleting the slot forgets what it learnt
    assert (await client.delete("/v1/slots/hero", headers=ADMIN)).status_code == 204
    assert counters(redis_sync, key_prefix) == {}


async def test_thompson_sampling_converges_to_each_segments_best_variant(
    app: FastAPI, client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    await define(client)
    await refresh(app)
    app.state.services.bandits.rng = np.random.default_rng(2024)
    truth = np.random.default_rng(7)
    shown: dict[str, list[str]] = {"mobile": [], "desktop": []}
    clicks = 0
    for i in range(1600):
        device = "mobile" if i % 2 else "desktop"
        d = await decide(client, f"visitor-{i}", device)
        assert d["policy"] == "bandit"
        shown[device].append(d["variant"])
        events = [{"visitor_id": f"visitor-{i}", "token": d["token"], "type": "impression"}]
        if truth.random() < CLICK_RATES[device][d["variant"]]:
            clicks += 1
            events.append({**events[0], "type": "click"})
        await post(client, *events)
        if i % 50 == 49:
            await refresh(app)  # what the background poller does every second

    for device, variants in shown.items():
        late = Counter(variants[-300:])
        assert late[BEST[device]] / 300 > 0.8, (device, late)
    posteriors = app.state.services.bandits.current["hero"].posteriors
    assert "abc"[int(np.argmax(posteriors["phones"].means))] == BEST["mobile"]
    assert "abc"[int(np.argmax(posteriors["_"].means))] == BEST["desktop"]
    totals = counters(redis_sync, key_prefix)
    assert sum(v for k, v in totals.items() if k.startswith("t:")) == 1600
    assert sum(v for k, v in totals.items() if k.startswith("s:")) == clicks

    # the decision log says the propensities were estimated, and by which posterior
    await app.state.services.decision_log.flush()
    records = [orjson.loads(f[b"e"]) for _, f in redis_sync.xrange(f"{key_prefix}:events")]
    logged = [r["properties"] for r in records if r["type"] == "decision"]
    assert len(logged) == 1600
    assert all(p["propensity_estimated"] and p["policy"] == "bandit" for p in logged)
    assert {p["bandit_segment"] for p in logged} == {"phones", "_"}
    assert all(0 < p["propensity"] <= 1 for p in logged)
