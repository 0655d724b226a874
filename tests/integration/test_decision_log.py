"""Every decision and recommendation list lands in the event log with what a learner
needs; visitors who refused analytics are not logged; erasure takes the records too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI

from engine.decisions.log import DecisionLog, LogTarget
from engine.events.archive import archive_once, read_archive
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from tests.conftest import ADMIN, SECRET, SITE
from tests.integration.test_decide_api import HERO
from training.attribution import attribute

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

pseudonymize = Pseudonymizer(Keyring.from_secret(SECRET).pseudonyms)


def decisions(redis_sync: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    records = [orjson.loads(f[b"e"]) for _, f in redis_sync.xrange(f"{prefix}:events")]
    return [r for r in records if r["type"] == "decision"]


async def decide(client: httpx.AsyncClient, visitor: str) -> dict[str, Any]:
    body = {"visitor_id": visitor, "slots": ["hero"], "context": {"device": "mobile"}}
    response = await client.post("/v1/decide", headers=SITE, json=body)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_a_decision_is_logged_with_its_features_and_propensity(
    app: FastAPI, client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
    views = [{"type": "page_view", "visitor_id": "v1", "properties": {"category": "shoes"}}]
    assert (
        await client.post("/v1/events", headers=SITE, json={"events": views})
    ).status_code == 202
    result = await decide(client, "v1")
    assert await app.state.services.decision_log.flush() == 1
    (record,) = decisions(redis_sync, key_prefix)
    chosen = result["decisions"][0]
    assert record["pid"] == pseudonymize("v1")
    assert record["token"] == chosen["token"]
    assert record["event_id"] == f"{result['decision_id']}.hero"
    props = record["properties"]
    assert props["slot"] == "hero"
    assert props["chosen"] == chosen["variant"] == "mobile"
    assert props["eligible"] == ["generic", "sporty", "mobile"]
    assert (props["propensity"], props["policy"]) == (1.0, "rules")
    assert props["features"]["views.shoes"] == 1  # as they were when it was decided
    assert props["context"] == {"device": "mobile"}


async def test_visitors_who_refused_analytics_are_not_logged(
    app: FastAPI, client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
    consent = {"personalization": True, "analytics": False}
    put = await client.put("/v1/visitors/quiet/consent", headers=SITE, json=consent)
    assert put.status_code == 200
    result = await decide(client, "quiet")
    assert result["decisions"][0]["policy"] == "rules"  # still personalized
    await decide(client, "chatty")
    await app.state.services.decision_log.flush()
    assert [r["pid"] for r in decisions(redis_sync, key_prefix)] == [pseudonymize("chatty")]


async def test_erasure_deletes_the_visitors_decision_records(
    app: FastAPI, client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
    for visitor in ("gone", "gone", "stays"):
        await decide(client, visitor)
    await app.state.services.decision_log.flush()
    assert len(decisions(redis_sync, key_prefix)) == 3
    assert (await client.delete("/v1/visitors/gone", headers=ADMIN)).status_code == 200
    assert [r["pid"] for r in decisions(redis_sync, key_prefix)] == [pseudonymize("stays")]


async def test_decision_records_reach_the_archive(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
    await decide(client, "archived")
    await app.state.services.decision_log.flush()
    await archive_once(app.state.services.store, tmp_path / "archive")
    table = read_archive(tmp_path / "archive")
    (row,) = [r for r in table.to_pylist() if r["type"] == "decision"]
    assert orjson.loads(row["properties"])["chosen"] == "mobile"
    assert row["profile"] == pseudonymize("archived")


async def test_a_full_buffer_drops_the_oldest_and_counts_them(app: FastAPI) -> None:
    dropped: list[int] = []
    log = DecisionLog(
        app.state.services.store, LogTarget(1000, 60, 100), capacity=2, on_drop=dropped.append
    )
    for n in range(3):
        log.record("p", {"type": "decision", "n": n})
    assert log.pending == 2
    assert dropped == [1]


async def test_a_click_sent_back_with_the_token_is_attributed_to_the_decision(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=HERO)).status_code == 201
    shown = await decide(client, "clicker")
    await decide(client, "ignorer")
    token = shown["decisions"][0]["token"]
    click = {"type": "click", "visitor_id": "clicker", "token": token}
    posted = await client.post("/v1/events", headers=SITE, json={"events": [click]})
    assert posted.json()["accepted"] == 1
    await app.state.services.decision_log.flush()
    await archive_once(app.state.services.store, tmp_path / "archive")
    result = attribute(read_archive(tmp_path / "archive"), slot="hero")
    by_visitor = dict(zip(result.pids.tolist(), result.clicked.tolist(), strict=True))
    assert by_visitor == {pseudonymize("clicker"): True, pseudonymize("ignorer"): False}
