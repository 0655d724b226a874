"""The loop a data scientist runs, live over HTTP with simulated shoppers: log a
uniform policy, archive, train the scorer, activate it, and see the `model` policy
beat the marketer's rules and the uniform policy on click-through rate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from scipy import stats

from engine.decisions import decide as decide_module
from engine.events.archive import archive_once, read_archive
from tests.conftest import ADMIN, client_for, engine_client
from tests.support.waiting import until
from training.attribution import attribute
from training.scorer_train import ScorerParams, save_trained_scorer, train_scorer
from training.simulator import Persona, Simulator, World
from training.traffic import TrafficTally, drive

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

VARIANTS = ("sale", "phone", "running", "gadgets")


def persona(name: str, category: str, mobile: float, best: str) -> Persona:
    """Shoppers who mostly browse `category` and click `best` ten times as often as the
    rest; what the rules can see of them is only their device."""
    others = [c for c in ("sports", "fashion", "electronics") if c != category]
    return Persona(
        name=name,
        share=1.0,
        devices={"mobile": mobile, "desktop": 1.0 - mobile},
        interests={category: 0.8, others[0]: 0.1, others[1]: 0.1},
        views_per_visit=3.0,
        click_rates={"hero": {v: 0.30 if v == best else 0.03 for v in VARIANTS}},
        conversion_given_click=0.0,
        order_value=0.0,
    )


WORLD = World(
    personas=[
        persona("runner", "sports", 0.5, "running"),
        persona("stylist", "fashion", 0.8, "phone"),
        persona("geek", "electronics", 0.2, "gadgets"),
    ],
    items_by_category={
        c: [f"{c}-{i}" for i in range(20)] for c in ("sports", "fashion", "electronics")
    },
)


def hero(policy: str) -> dict[str, Any]:
    """What a marketer would set up: phones get the phone offer, everyone else the sale."""
    return {
        "variants": [{"id": v, "content": {"title": v}} for v in VARIANTS],
        "default": "sale",
        "policy": policy,
        "rules": [
            {"when": {"attr": "context.device", "op": "eq", "value": "mobile"}, "variant": "phone"}
        ],
        "exploration": {"epsilon": 0.05},
    }


async def run_policy(app: FastAPI, policy: str, visitors: int, prefix: str) -> TrafficTally:
    async with client_for(app) as client, engine_client(app) as engine:
        response = await client.put("/v1/slots/hero", headers=ADMIN, json=hero(policy))
        assert response.status_code in (200, 201), response.text
        simulator = Simulator(WORLD, seed=11)  # the same shoppers for every policy
        tally = await drive(
            engine,
            simulator,
            simulator.visitors(visitors, id_prefix=prefix),
            ["hero"],
            visits_per_visitor=3,  # later visits are decided on the earlier ones' browsing
            seconds=300,
            concurrency=1,  # one visit at a time: the run is the same every time
        )
    assert not tally.errors, tally.errors
    return tally


def ctr(tally: TrafficTally) -> tuple[int, int]:
    return sum(tally.clicks.values()), sum(tally.decisions.values())


async def test_the_model_policy_beats_rules_and_uniform_on_live_traffic(
    app: FastAPI, tmp_path: Path, artifacts: Path
) -> None:
    decide_module._SHARED_RNG.seed(5)  # the policies' draws, for a repeatable run
    logged = await run_policy(app, "uniform", 1500, "log")
    assert logged.policies["uniform"] == 4500
    await app.state.services.decision_log.flush()
    archive = tmp_path / "archive"
    await archive_once(app.state.services.store, archive)
    decisions = attribute(await asyncio.to_thread(read_archive, archive), 3600.0, "hero")
    assert len(decisions) == 4500
    scorer, metrics = train_scorer(decisions, "hero", ScorerParams(rounds=60))
    assert metrics.auc is not None
    assert metrics.auc > 0.7  # first visits carry no browsing: the ceiling is well below 1
    version = save_trained_scorer(artifacts, scorer, metrics, {})
    async with client_for(app) as client:
        response = await client.post(f"/v1/models/scorer/{version}/activate", headers=ADMIN)
        assert response.status_code == 200, response.text
    await until(lambda: "hero" in app.state.services.scorers.current)

    results = {}
    for policy in ("rules", "uniform", "model"):
        tally = await run_policy(app, policy, 300, policy)
        assert tally.policies[policy] == 900, tally.policies
        results[policy] = ctr(tally)
    model_clicks, model_n = results["model"]
    for other in ("rules", "uniform"):
        clicks, n = results[other]
        table = np.array([[model_clicks, model_n - model_clicks], [clicks, n - clicks]])
        _, p_value, _, _ = stats.chi2_contingency(table)
        assert model_clicks / model_n > clicks / n, results
        assert p_value < 0.001, (other, results, p_value)
