"""Recommendations over HTTP: trained users get what the offline model gives, new
visitors fold in their live history, cold visitors get popular items, filters hold,
model versions switch under load without a failed request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import redis
import scipy.sparse as sp
from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from engine.app import create_app
from engine.decisions.tokens import TokenSigner
from engine.keyring import Keyring
from models.ann import add_index
from models.interactions import DEFAULT_WEIGHTS
from tests.conftest import ADMIN, SECRET, SITE, client_for, make_settings
from tests.support.recs_artifacts import (
    ITEMS_PER_CATEGORY,
    REGULARIZATION,
    PlantedData,
    fit_als,
    planted_data,
    wait_for_recs,
    write_recs,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture(scope="module")
def data() -> PlantedData:
    return planted_data()


@pytest.fixture(scope="module")
def models(data: PlantedData) -> tuple[Any, Any]:
    """Fitted once, before any app runs: fitting blocks the event loop, and the app's
    model poll would time out behind it."""
    return fit_als(data), fit_als(data, factors=6, seed=9)


async def activate(client: httpx.AsyncClient, app: FastAPI, version: str) -> None:
    response = await client.post(f"/v1/models/recs/{version}/activate", headers=ADMIN)
    assert response.status_code == 200, response.text
    await wait_for_recs(app, version)


async def recs(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get("/v1/recommendations", headers=SITE, params=params)


async def post_events(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    response = await client.post("/v1/events", headers=SITE, json={"events": events})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


@pytest.fixture
async def live(
    client: httpx.AsyncClient,
    app: FastAPI,
    artifacts: Path,
    data: PlantedData,
    models: tuple[Any, Any],
) -> tuple[Any, str]:
    model = models[0]
    # short precomputed lists: filters that empty them, and fold-in visitors the lists
    # do not certify, send requests down the full path
    version = write_recs(artifacts, data, model, SECRET, top_k=10, fold_in_lists=10)
    catalogue = [
        {"item_id": item, "category": data.category_of(item), "price": 1.0}
        for item in data.item_ids
    ]
    loaded = await client.put("/v1/items", headers=ADMIN, json={"items": catalogue})
    assert loaded.status_code == 200
    await activate(client, app, version)
    return model, version


async def test_a_trained_visitor_gets_the_offline_models_top_n(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    model, version = live
    for user in (0, 1, 2, 45):
        response = await recs(client, visitor_id=data.user_ids[user], n=5)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["source"], body["policy"], body["model_version"]) == (
            "trained",
            "model",
            version,
        )
        with threadpool_limits(1, "blas"):
            ids, scores = model.recommend(
                user, data.user_items[user], N=5, filter_already_liked_items=True
            )
        assert [i["item_id"] for i in body["items"]] == [data.item_ids[i] for i in ids]
        np.testing.assert_allclose([i["score"] for i in body["items"]], scores, rtol=1e-5)


async def test_the_token_names_the_model_version_and_the_source(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    _, version = live
    body = (await recs(client, visitor_id=data.user_ids[3])).json()
    token = TokenSigner(Keyring.from_secret(SECRET).tokens).verify(body["token"])
    assert (token.slot, token.variant, token.model_version) == (
        "recommendations",
        "trained",
        version,
    )


async def test_exclude_and_category_filter_a_trained_visitors_list(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    first = (await recs(client, visitor_id=data.user_ids[0], n=3)).json()["items"]
    dropped = [first[0]["item_id"], first[2]["item_id"]]
    again = await recs(client, visitor_id=data.user_ids[0], n=3, exclude=",".join(dropped))
    ids = [i["item_id"] for i in again.json()["items"]]
    assert len(ids) == 3
    assert not set(ids) & set(dropped)
    assert ids[0] == first[1]["item_id"]
    # a category the visitor never touched: all from it, n of them
    body = (await recs(client, visitor_id=data.user_ids[0], n=7, category="b")).json()
    assert [data.category_of(i["item_id"]) for i in body["items"]] == ["b"] * 7


async def test_a_new_visitors_clicks_fold_in_at_once(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    cold = (await recs(client, visitor_id="newcomer", n=5)).json()
    assert cold["source"] == "popular"
    clicked = ["c-00", "c-03", "c-07"]
    await post_events(
        client,
        [{"type": "click", "visitor_id": "newcomer", "item_id": item} for item in clicked],
    )
    warm = (await recs(client, visitor_id="newcomer", n=5)).json()
    assert warm["source"] == "fold_in"
    ids = [i["item_id"] for i in warm["items"]]
    assert not set(ids) & set(clicked)  # what they clicked is not offered again
    assert sum(data.category_of(i) == "c" for i in ids) >= 4  # the planted taste shows


async def test_a_new_visitor_gets_what_implicit_recommends_after_recalculating_them(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    model, _ = live
    assert model.regularization == REGULARIZATION
    rng = np.random.default_rng(8)
    for visitor in range(12):
        rows = rng.choice(len(data.item_ids), size=int(rng.integers(1, 6)), replace=False)
        await post_events(
            client,
            [
                {"type": "click", "visitor_id": f"new-{visitor}", "item_id": data.item_ids[r]}
                for r in rows
            ],
        )
        body = (await recs(client, visitor_id=f"new-{visitor}", n=5)).json()
        assert body["source"] == "fold_in"
        clicks = sp.csr_matrix(
            (np.full(rows.size, DEFAULT_WEIGHTS["click"], np.float32), ([0] * rows.size, rows)),
            shape=(1, len(data.item_ids)),
        )
        with threadpool_limits(1, "blas"):
            ids, scores = model.recommend(
                0, clicks, N=5, recalculate_user=True, filter_already_liked_items=True
            )
        assert [i["item_id"] for i in body["items"]] == [data.item_ids[i] for i in ids]
        np.testing.assert_allclose([i["score"] for i in body["items"]], scores, rtol=2e-3)


async def test_without_history_popular_items_then_popular_in_the_favourite_category(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    popularity = np.asarray((data.user_items > 0).sum(axis=0)).ravel()
    body = (await recs(client, visitor_id="stranger", n=4)).json()
    assert body["source"] == "popular"
    got = [data.item_ids.index(i["item_id"]) for i in body["items"]]
    assert [i["score"] for i in body["items"]] == sorted(popularity[got].tolist(), reverse=True)
    assert min(popularity[got]) >= np.sort(popularity)[-4]
    # page views of a category (no item) make it the favourite
    await post_events(
        client,
        [{"type": "page_view", "visitor_id": "stranger", "properties": {"category": "b"}}] * 2,
    )
    body = (await recs(client, visitor_id="stranger", n=4)).json()
    assert body["source"] == "popular_in_category"
    assert {data.category_of(i["item_id"]) for i in body["items"]} == {"b"}


async def test_unavailable_items_disappear_and_catalogue_newcomers_fill_a_short_list(
    client: httpx.AsyncClient, app: FastAPI, live: tuple[Any, str]
) -> None:
    items = [
        {"item_id": f"a-{j:02d}", "category": "a", "price": 1.0, "available": j >= 15}
        for j in range(ITEMS_PER_CATEGORY)
    ]
    items.append({"item_id": "a-new", "category": "a", "price": 2.0})
    assert (await client.put("/v1/items", headers=ADMIN, json={"items": items})).status_code == 200
    await asyncio.sleep(0.3)  # the worker polls the catalogue version every 100 ms
    body = (await recs(client, visitor_id="anyone", n=10, category="a")).json()
    ids = [i["item_id"] for i in body["items"]]
    assert ids[:5] == sorted(ids[:5], key=lambda i: -body["items"][ids.index(i)]["score"])
    assert set(ids) == {"a-15", "a-16", "a-17", "a-18", "a-19", "a-new"}  # all the catalogue has
    assert body["items"][-1] == {"item_id": "a-new", "score": None}
    everything = (await recs(client, visitor_id="anyone", n=100)).json()["items"]
    assert not {i["item_id"] for i in everything} & {f"a-{j:02d}" for j in range(15)}


async def test_similar_items_share_the_category(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    body = (await client.get("/v1/items/b-04/similar", headers=SITE, params={"n": 5})).json()
    ids = [i["item_id"] for i in body["items"]]
    assert "b-04" not in ids
    assert len(ids) == 5
    assert sum(data.category_of(i) == "b" for i in ids) >= 4
    missing = await client.get("/v1/items/nope/similar", headers=SITE)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"visitor_id": ""},
        {"visitor_id": "v", "n": 0},
        {"visitor_id": "v", "n": 101},
        {"visitor_id": "v", "n": "ten"},
        {"visitor_id": "v", "category": "Not A Key"},
        {"visitor_id": "v", "exclude": ",".join(f"i{j}" for j in range(101))},
    ],
)
async def test_bad_parameters_get_a_422(
    client: httpx.AsyncClient, live: tuple[Any, str], params: dict[str, Any]
) -> None:
    response = await recs(client, **params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_without_an_active_model_recommendations_say_503(client: httpx.AsyncClient) -> None:
    response = await recs(client, visitor_id="v")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_loaded"
    assert (await client.get("/v1/recommendations", params={"visitor_id": "v"})).status_code == 401


async def test_activation_refuses_missing_and_broken_versions(
    client: httpx.AsyncClient, live: tuple[Any, str], artifacts: Path
) -> None:
    _, version = live
    missing = await client.post("/v1/models/recs/20990101-000000-abcd/activate", headers=ADMIN)
    assert missing.status_code == 404
    bad_name = await client.post("/v1/models/recs/..%2Fetc/activate", headers=ADMIN)
    assert bad_name.status_code == 404
    broken = artifacts / "recs" / "20990101-000000-beef"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{}")
    refused = await client.post(f"/v1/models/recs/{broken.name}/activate", headers=ADMIN)
    assert refused.status_code == 422
    listing = (await client.get("/v1/models", headers=ADMIN)).json()
    assert listing["active"] == {"recs": version}
    assert listing["loaded"] == {"recs": version}
    assert [v["version"] for v in listing["versions"]["recs"]] == [version]
    assert listing["versions"]["recs"][0]["active"] is True
    ready = (await client.get("/readyz")).json()
    assert (ready["checks"]["recs_active"], ready["checks"]["recs_loaded"]) == (version, version)
    assert (await client.get("/v1/models", headers=SITE)).status_code in (401, 403)


async def test_a_new_version_goes_live_under_load_without_a_failed_request(
    client: httpx.AsyncClient,
    app: FastAPI,
    live: tuple[Any, str],
    artifacts: Path,
    data: PlantedData,
    models: tuple[Any, Any],
) -> None:
    _, first = live
    second = write_recs(artifacts, data, models[1], SECRET)
    seen: list[str] = []
    statuses: list[int] = []
    stop = asyncio.Event()

    async def hammer(worker: int) -> None:
        while not stop.is_set():
            response = await recs(client, visitor_id=f"user-{worker}", n=5)
            statuses.append(response.status_code)
            if response.status_code == 200:
                seen.append(response.json()["model_version"])

    workers = [asyncio.create_task(hammer(w)) for w in range(4)]
    try:
        await asyncio.sleep(0.2)
        await activate(client, app, second)
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert set(statuses) == {200}
    assert seen[0] == first
    assert seen[-1] == second
    switch = seen.index(second)
    assert set(seen[switch:]) == {second}  # no flapping back once switched


async def test_a_visitor_who_refused_personalization_gets_popular_items(
    client: httpx.AsyncClient, live: tuple[Any, str], data: PlantedData
) -> None:
    refused = await client.put(
        f"/v1/visitors/{data.user_ids[0]}/consent",
        headers=SITE,
        json={"personalization": False, "analytics": False},
    )
    assert refused.status_code == 200
    body = (await recs(client, visitor_id=data.user_ids[0], n=3)).json()
    assert (body["source"], body["policy"]) == ("popular", "no_consent")


async def test_with_the_approximate_index_trained_visitors_get_the_same_top_n(
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
    artifacts: Path,
    data: PlantedData,
    models: tuple[Any, Any],
) -> None:
    model = models[0]
    version = write_recs(artifacts, data, model, SECRET)
    folder = artifacts / "recs" / version
    assert add_index(folder, np.asarray(model.item_factors), np.asarray(model.user_factors)) == 1.0
    settings = make_settings(
        redis_url, key_prefix, tmp_path / "data", artifacts_dir=artifacts, recs_index="hnsw"
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application), client_for(application) as http:
        await activate(http, application, version)
        assert application.state.services.recs.current.model.ann is not None
        for user in (4, 5, 6):
            body = (await recs(http, visitor_id=data.user_ids[user], n=5)).json()
            with threadpool_limits(1, "blas"):
                ids, _ = model.recommend(
                    user, data.user_items[user], N=5, filter_already_liked_items=True
                )
            assert [i["item_id"] for i in body["items"]] == [data.item_ids[i] for i in ids]


async def test_a_recommendation_list_is_logged_for_learning(
    client: httpx.AsyncClient,
    app: FastAPI,
    live: tuple[Any, str],
    data: PlantedData,
    redis_sync: redis.Redis,
    key_prefix: str,
) -> None:
    _, version = live
    body = (await recs(client, visitor_id=data.user_ids[7], n=4)).json()
    await app.state.services.decision_log.flush()
    records = [orjson.loads(f[b"e"]) for _, f in redis_sync.xrange(f"{key_prefix}:events")]
    (record,) = [r for r in records if r["type"] == "decision"]
    assert record["token"] == body["token"]
    props = record["properties"]
    assert props["items"] == [i["item_id"] for i in body["items"]]
    assert (props["slot"], props["source"], props["model_version"]) == (
        "recommendations",
        "trained",
        version,
    )
