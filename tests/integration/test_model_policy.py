"""A slot with the `model` policy: the active scorer picks per visitor, with exact
propensities and its version in token and log; without a scorer, the rules decide."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi import FastAPI

from engine.decisions.tokens import TokenSigner
from engine.keyring import Keyring
from tests.conftest import ADMIN, SECRET, SITE
from tests.support.waiting import until
from tests.unit.training.test_scorer_train import uniform_log
from training.scorer_train import ScorerParams, save_trained_scorer, train_scorer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def slot(exploration: dict[str, float] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "variants": [{"id": v, "content": {"title": v.upper()}} for v in ("a", "b", "c")],
        "default": "c",
        "policy": "model",
        "rules": [{"when": {"attr": "context.device", "op": "eq", "value": "tv"}, "variant": "b"}],
    }
    if exploration is not None:
        body["exploration"] = exploration
    return body


@pytest.fixture(scope="module")
def trained() -> Any:
    """Heavy browsers (page_views >= 5) click `a`, light ones `b` (the simulator in
    tests/unit/training/test_scorer_train.py)."""
    log, _ = uniform_log(6000, seed=11)
    return train_scorer(log, "hero", ScorerParams(rounds=60))


async def live_scorer(
    client: httpx.AsyncClient, app: FastAPI, artifacts: Path, trained: Any
) -> str:
    version = save_trained_scorer(artifacts, trained[0], trained[1], {})
    response = await client.post(f"/v1/models/scorer/{version}/activate", headers=ADMIN)
    assert response.status_code == 200, response.text
    scorers = app.state.services.scorers
    await until(
        lambda: getattr(scorers.current.get("hero"), "version", None) == version,
        failure="the scorer did not load",
    )
    return version


async def browse(client: httpx.AsyncClient, visitor: str, pages: int) -> None:
    events = [{"type": "page_view", "visitor_id": visitor} for _ in range(pages)]
    response = await client.post("/v1/events", headers=SITE, json={"events": events})
    assert response.status_code == 202


async def decide(client: httpx.AsyncClient, visitor: str) -> dict[str, Any]:
    body = {"visitor_id": visitor, "slots": ["hero"], "context": {"device": "web"}}
    response = await client.post("/v1/decide", headers=SITE, json=body)
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()["decisions"][0]
    return decision


async def test_the_scorer_picks_per_visitor_and_says_so(
    app: FastAPI,
    client: httpx.AsyncClient,
    artifacts: Path,
    trained: Any,
    redis_sync: redis.Redis,
    key_prefix: str,
) -> None:
    put = await client.put("/v1/slots/hero", headers=ADMIN, json=slot({"epsilon": 0.0}))
    assert put.status_code == 201
    version = await live_scorer(client, app, artifacts, trained)
    await asyncio.sleep(0.6)  # the definitions refresher picks up the slot
    await browse(client, "heavy", 8)
    await browse(client, "light", 1)
    heavy, light = await decide(client, "heavy"), await decide(client, "light")
    assert (heavy["variant"], heavy["policy"]) == ("a", "model")
    assert (light["variant"], light["policy"]) == ("b", "model")
    token = TokenSigner(Keyring.from_secret(SECRET).tokens).verify(heavy["token"])
    assert (token.propensity, token.model_version) == (1.0, version)
    await app.state.services.decision_log.flush()
    records = [orjson.loads(f[b"e"]) for _, f in redis_sync.xrange(f"{key_prefix}:events")]
    logged = [r["properties"] for r in records if r["type"] == "decision"]
    assert {(p["chosen"], p["policy"], p["model_version"]) for p in logged} == {
        ("a", "model", version),
        ("b", "model", version),
    }


async def test_exploration_propensities_are_exact(
    app: FastAPI, client: httpx.AsyncClient, artifacts: Path, trained: Any
) -> None:
    put = await client.put("/v1/slots/hero", headers=ADMIN, json=slot({"epsilon": 0.3}))
    assert put.status_code == 201
    await live_scorer(client, app, artifacts, trained)
    await asyncio.sleep(0.6)
    await browse(client, "heavy", 8)
    seen = {}
    for _ in range(60):
        d = await decide(client, "heavy")
        token = TokenSigner(Keyring.from_secret(SECRET).tokens).verify(d["token"])
        seen[d["variant"]] = token.propensity
    assert seen["a"] == pytest.approx(0.8)  # 1 - 0.3 + 0.3/3
    assert all(p == pytest.approx(0.1) for v, p in seen.items() if v != "a")


async def test_a_model_slot_without_a_scorer_decides_by_its_rules(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=slot())).status_code == 201
    await asyncio.sleep(0.6)
    decision = await decide(client, "anyone")
    assert (decision["variant"], decision["policy"]) == ("c", "rules")
    metrics = (await client.get("/metrics")).text
    assert 'omotenashi_model_fallbacks_total{slot="hero"} 1.0' in metrics


async def test_bad_exploration_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/slots/hero", headers=ADMIN, json=slot({"epsilon": 2.0}))
    assert response.status_code == 422


async def test_an_experiment_arm_can_run_a_scorer_version_that_is_not_active(
    app: FastAPI, client: httpx.AsyncClient, artifacts: Path, trained: Any
) -> None:
    """Model against rules, before the model goes live: the worker loads the version an
    arm names beside the active ones and drops it when the experiment stops."""
    rules_slot = {**slot(), "policy": "rules"}
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=rules_slot)).status_code == 201
    version = save_trained_scorer(artifacts, trained[0], trained[1], {})
    experiment = {
        "target": "slot:hero",
        "arms": [
            {"name": "rules", "policy": "rules"},
            {"name": "scorer", "model_version": version},
        ],
        "metrics": [{"name": "clicked", "event": "click"}],
    }
    assert (
        await client.put("/v1/experiments/m1", headers=ADMIN, json=experiment)
    ).status_code == 201
    assert (await client.post("/v1/experiments/m1/start", headers=ADMIN)).status_code == 200
    scorers = app.state.services.scorers
    await until(lambda: version in scorers.versions)
    assert version in scorers.versions
    assert "hero" not in scorers.current  # loaded for the arm, not activated
    await browse(client, "heavy", 8)
    seen = {}
    for i in range(40):
        visitor = f"visitor-{i}"
        d = await decide(client, visitor)
        seen[d["arm"]] = d
        token = TokenSigner(Keyring.from_secret(SECRET).tokens).verify(d["token"])
        assert (token.experiment, token.arm) == ("m1", d["arm"])
        if d["arm"] == "scorer":
            assert (d["policy"], token.model_version) == ("model", version)
        else:
            assert (d["policy"], d["variant"]) == ("rules", "c")
    assert set(seen) == {"rules", "scorer"}
    assert (await client.post("/v1/experiments/m1/stop", headers=ADMIN)).status_code == 200
    await until(lambda: version not in scorers.versions)
    assert version not in scorers.versions
