"""A/B tests between recommender model versions over HTTP with the real Redis: each
visitor's list comes from their arm's version (the live model for an arm without
one), the holdout gets the unpersonalized list, exposures and clicks count toward the
experiment, a version that does not load leaves its arm on the live model (flagged and
counted), and stopping the test puts everyone back on the live model and releases
the extra version."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import redis
from fastapi import FastAPI

from engine.decisions.tokens import TokenSigner
from engine.keyring import Keyring
from tests.conftest import ADMIN, SECRET, SITE
from tests.support.recs_artifacts import (
    ITEMS_PER_CATEGORY,
    PlantedData,
    fit_als,
    planted_data,
    write_recs,
)
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

VISITORS = 400
HOLDOUT = 0.1
MISSING = "20990101-000000-abcd"  # a well-formed version with no folder behind it


@pytest.fixture(scope="module")
def data() -> PlantedData:
    return planted_data()


@pytest.fixture(scope="module")
def shifted(data: PlantedData) -> PlantedData:
    """The same visitors with their tastes moved one category on (a's fans now touch
    b's items, b's c's, c's a's): a model trained on it ranks other items first."""
    columns = (np.arange(len(data.item_ids)) - ITEMS_PER_CATEGORY) % len(data.item_ids)
    return PlantedData(data.item_ids, data.user_ids, data.user_items[:, columns].tocsr())


@pytest.fixture(scope="module")
def trained(data: PlantedData, shifted: PlantedData) -> tuple[Any, Any]:
    """Both models, fitted once and before any app starts: a fit on the event loop
    would stall the app's Redis reads past their timeout."""
    return fit_als(data), fit_als(shifted)


@pytest.fixture
async def versions(
    client: httpx.AsyncClient,
    app: FastAPI,
    artifacts: Path,
    data: PlantedData,
    shifted: PlantedData,
    trained: tuple[Any, Any],
) -> tuple[str, str]:
    """(live, candidate): the live version active, the catalogue loaded."""
    live = await asyncio.to_thread(write_recs, artifacts, data, trained[0], SECRET, 10)
    candidate = await asyncio.to_thread(write_recs, artifacts, shifted, trained[1], SECRET, 10)
    catalogue = [
        {"item_id": item, "category": data.category_of(item), "price": 1.0}
        for item in data.item_ids
    ]
    assert (await client.put("/v1/items", headers=ADMIN, json={"items": catalogue})).is_success
    activated = await client.post(f"/v1/models/recs/{live}/activate", headers=ADMIN)
    assert activated.status_code == 200, activated.text
    await until(lambda: app.state.services.recs.version == live)
    return live, candidate


def experiment(candidate: str, **extra: Any) -> dict[str, Any]:
    return {
        "target": "recommendations",
        "arms": [
            {"name": "current", "weight": 1},
            {"name": "candidate", "weight": 3, "model_version": candidate},
        ],
        "metrics": [{"name": "clicked", "event": "click", "primary": True}],
        **extra,
    }


async def start(client: httpx.AsyncClient, definition: dict[str, Any]) -> None:
    put = await client.put("/v1/experiments/recs1", headers=ADMIN, json=definition)
    assert put.status_code == 201, put.text
    started = await client.post("/v1/experiments/recs1/start", headers=ADMIN)
    assert started.status_code == 200, started.text


async def recs(client: httpx.AsyncClient, visitor: str, n: int = 5) -> dict[str, Any]:
    response = await client.get(
        "/v1/recommendations", headers=SITE, params={"visitor_id": visitor, "n": n}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def events(client: httpx.AsyncClient, *items: dict[str, Any]) -> None:
    response = await client.post("/v1/events", headers=SITE, json={"events": list(items)})
    assert response.status_code == 202, response.text


async def results(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The primary metric's rows by arm."""
    response = await client.get("/v1/experiments/recs1/results", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {row["arm"]: row for row in response.json()["metrics"][0]["arms"]}


def counted(app: FastAPI, name: str, **labels: str) -> float:
    value = app.state.services.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def verify(token: str) -> Any:
    return TokenSigner(Keyring.from_secret(SECRET).tokens).verify(token)


async def test_each_visitor_gets_the_version_of_their_arm_and_counts_toward_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    versions: tuple[str, str],
    data: PlantedData,
    redis_sync: redis.Redis,
    key_prefix: str,
) -> None:
    live, candidate = versions
    refused = "refuses-personalization"
    consent = {"personalization": False, "analytics": False}
    put = await client.put(f"/v1/visitors/{refused}/consent", headers=SITE, json=consent)
    assert put.status_code == 200
    unpersonalized = await recs(client, refused)
    assert unpersonalized["policy"] == "no_consent"

    await start(client, experiment(candidate, holdout=HOLDOUT))
    await until(lambda: candidate in app.state.services.recs.versions)
    assert app.state.services.recs.version == live  # the candidate is held, not activated

    # trained visitors first: their lists show which model ranked them
    visitors = data.user_ids + [f"visitor-{i}" for i in range(VISITORS - len(data.user_ids))]
    arms: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for visitor in visitors:
        body = await recs(client, visitor)
        assert body["experiment"] == "recs1"
        arm = arms[visitor] = body["arm"]
        token = verify(body["token"])
        assert (token.experiment, token.arm, token.policy) == ("recs1", arm, body["policy"])
        assert token.model_version == body["model_version"]
        items = lists[visitor] = [i["item_id"] for i in body["items"]]
        if arm == "holdout":
            assert (body["policy"], body["source"]) == ("holdout", "popular")
            assert body["items"] == unpersonalized["items"]
            assert body["model_version"] == live
        else:
            assert body["policy"] == "model"
            assert body["model_version"] == {"current": live, "candidate": candidate}[arm]
        if visitor in data.user_ids and arm != "holdout":
            taste = data.user_ids.index(visitor) % 3 + (arm == "candidate")
            liked = "abc"[taste % 3]
            assert sum(data.category_of(i) == liked for i in items) >= 4, (visitor, arm, items)
        again = await recs(client, visitor)
        assert (again["arm"], again["model_version"]) == (arm, body["model_version"])

    split = Counter(arms.values())
    holdout_sd = math.sqrt(VISITORS * HOLDOUT * (1 - HOLDOUT))
    assert abs(split["holdout"] - VISITORS * HOLDOUT) < 4 * holdout_sd, split
    treated = split["current"] + split["candidate"]
    candidate_sd = math.sqrt(treated * 0.75 * 0.25)
    assert abs(split["candidate"] - 0.75 * treated) < 4 * candidate_sd, split

    await app.state.services.decision_log.flush()
    records = [orjson.loads(f[b"e"]) for _, f in redis_sync.xrange(f"{key_prefix}:events")]
    logged = [r["properties"] for r in records if r["type"] == "decision"]
    assert len(logged) == 2 * VISITORS  # the refusing visitor's list is not logged
    assert all(p["experiment"] == "recs1" and p["arm"] in split for p in logged)

    # a third of each arm clicks the first item of their list, twice (counted once)
    clickers = {visitor for i, visitor in enumerate(visitors) if i % 3 == 0}
    for visitor in sorted(clickers):
        click = {"type": "click", "visitor_id": visitor, "item_id": lists[visitor][0]}
        await events(client, click, click)
    await events(client, {"type": "click", "visitor_id": "never-shown", "item_id": "a-00"})
    rows = await results(client)
    assert set(rows) == {"current", "candidate", "holdout"}
    for arm, row in rows.items():
        members = [v for v, a in arms.items() if a == arm]
        assert row["n"] == len(members)
        assert row["mean"] == pytest.approx(len(clickers.intersection(members)) / len(members))

    stopped = await client.post("/v1/experiments/recs1/stop", headers=ADMIN)
    assert stopped.status_code == 200, stopped.text
    await until(lambda: candidate not in app.state.services.recs.versions)
    assert list(app.state.services.recs.versions) == [live]
    for visitor in visitors[:: VISITORS // 40]:
        body = await recs(client, visitor)
        assert (body["model_version"], body["policy"]) == (live, "model")
        assert not {"experiment", "arm"} & set(body)
        assert verify(body["token"]).experiment is None


async def test_an_arm_whose_version_does_not_load_gets_the_live_model_flagged(
    app: FastAPI, client: httpx.AsyncClient, versions: tuple[str, str]
) -> None:
    live, _ = versions
    await start(client, experiment(MISSING))

    def load_errors() -> float:
        return counted(app, "omotenashi_model_load_errors_total", kind="recs")

    await until(lambda: load_errors() > 0)
    await asyncio.sleep(0.3)  # a few more polls: a failed version is not tried again
    assert load_errors() == 1.0
    assert list(app.state.services.recs.versions) == [live]

    seen: Counter[str] = Counter()
    for i in range(40):
        body = await recs(client, f"visitor-{i}")
        seen[body["arm"]] += 1
        assert body["model_version"] == live
        assert body["policy"] == {"current": "model", "candidate": "fallback"}[body["arm"]]
        assert verify(body["token"]).policy == body["policy"]
    assert set(seen) == {"current", "candidate"}
    fallbacks = counted(app, "omotenashi_model_fallbacks_total", slot="recommendations")
    assert fallbacks == seen["candidate"]
    # analysed by assignment: the candidate's visitors stay in its arm
    await app.state.services.decision_log.flush()
    rows = await results(client)
    assert {arm: row["n"] for arm, row in rows.items()} == dict(seen)


async def test_the_candidates_lists_follow_catalogue_changes(
    app: FastAPI,
    client: httpx.AsyncClient,
    versions: tuple[str, str],
    data: PlantedData,
) -> None:
    _, candidate = versions
    await start(client, experiment(candidate))
    await until(lambda: candidate in app.state.services.recs.versions)
    in_candidate = []
    for i in range(40):
        body = await recs(client, f"visitor-{i}", n=10)
        if body["arm"] == "candidate":
            in_candidate.append(f"visitor-{i}")
    popular = (await recs(client, in_candidate[0], n=10))["items"]
    gone = popular[0]["item_id"]
    change = {
        "item_id": gone,
        "category": data.category_of(gone),
        "price": 1.0,
        "available": False,
    }
    before = {v: s.catalog.catalog_version for v, s in app.state.services.recs.versions.items()}
    assert (await client.put("/v1/items", headers=ADMIN, json={"items": [change]})).is_success
    await until(
        lambda: all(
            s.catalog.catalog_version > before[v]
            for v, s in app.state.services.recs.versions.items()
        )
    )
    for visitor in in_candidate[:5]:
        body = await recs(client, visitor, n=10)
        assert body["model_version"] == candidate
        assert gone not in {i["item_id"] for i in body["items"]}


async def test_activating_the_candidate_mid_test_reuses_the_version_held_for_it(
    app: FastAPI, client: httpx.AsyncClient, versions: tuple[str, str]
) -> None:
    live, candidate = versions
    await start(client, experiment(candidate))
    await until(lambda: candidate in app.state.services.recs.versions)
    held = app.state.services.recs.versions[candidate].model
    activated = await client.post(f"/v1/models/recs/{candidate}/activate", headers=ADMIN)
    assert activated.status_code == 200, activated.text
    await until(lambda: app.state.services.recs.version == candidate)
    assert app.state.services.recs.current.model is held  # not loaded a second time
    await until(lambda: live not in app.state.services.recs.versions)  # named by nobody now
    for i in range(20):
        body = await recs(client, f"visitor-{i}")
        assert body["model_version"] == candidate  # both arms: the live model is the candidate
        assert body["arm"] in ("current", "candidate")
