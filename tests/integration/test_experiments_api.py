"""Experiments over HTTP with the real Redis: define, start, decide under the test,
count exposures and outcomes exactly, stop, and read results."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from tests.conftest import ADMIN, SITE

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SLOT = {
    "variants": [{"id": v, "content": {"title": v, "colour": "grey"}} for v in ("a", "b", "c")],
    "default": "a",
}
AB = {
    "target": "slot:hero",
    "arms": [{"name": "control", "variant": "a"}, {"name": "treat", "variant": "b"}],
    "metrics": [
        {"name": "clicked", "event": "click", "primary": True},
        {"name": "revenue", "event": "purchase", "aggregation": "sum"},
    ],
    "covariate": "page_views",
    "segments": ["phones"],
}


async def setup(client: httpx.AsyncClient, experiment: dict[str, Any] = AB) -> None:
    phones = {"when": {"attr": "context.device", "op": "eq", "value": "mobile"}}
    assert (await client.put("/v1/segments/phones", headers=ADMIN, json=phones)).status_code == 201
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=SLOT)).status_code == 201
    response = await client.put("/v1/experiments/exp1", headers=ADMIN, json=experiment)
    assert response.status_code == 201, response.text


async def decide(client: httpx.AsyncClient, visitor: str, device: str = "desktop") -> Any:
    body = {"visitor_id": visitor, "slots": ["hero"], "context": {"device": device}}
    response = await client.post("/v1/decide", headers=SITE, json=body)
    assert response.status_code == 200, response.text
    return response.json()["decisions"][0]


async def events(client: httpx.AsyncClient, *items: dict[str, Any]) -> None:
    response = await client.post("/v1/events", headers=SITE, json={"events": list(items)})
    assert response.status_code == 202, response.text


async def test_an_ab_test_assigns_counts_and_reports(
    app: FastAPI, client: httpx.AsyncClient, redis_sync: redis.Redis, key_prefix: str
) -> None:
    await setup(client)
    d = await decide(client, "before")
    assert "experiment" not in d  # a draft assigns nobody
    started = await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"

    arms: dict[str, str] = {}
    for i in range(60):
        visitor = f"v{i}"
        await events(client, *[{"type": "page_view", "visitor_id": visitor}] * (1 + i % 4))
        d = await decide(client, visitor, "mobile" if i % 3 == 0 else "desktop")
        assert d["experiment"] == "exp1"
        assert d["policy"] == "experiment"
        assert d["variant"] == {"control": "a", "treat": "b"}[d["arm"]]
        arms[visitor] = d["arm"]
        again = await decide(client, visitor)
        assert again["arm"] == d["arm"]  # deterministic
    await app.state.services.decision_log.flush()

    clickers = [v for i, v in enumerate(arms) if i % 2 == 0]
    for visitor in clickers:  # twice: a conversion metric counts a visitor once
        await events(client, {"type": "click", "visitor_id": visitor, "item_id": "x"})
        await events(client, {"type": "click", "visitor_id": visitor, "item_id": "x"})
    await events(
        client,
        {
            "type": "purchase",
            "visitor_id": "v1",
            "properties": {"order_id": "o1", "items": [{"item_id": "x", "price": 10.0, "qty": 2}]},
        },
    )
    response = await client.get("/v1/experiments/exp1/results", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    clicked = next(m for m in body["metrics"] if m["name"] == "clicked")
    rows = {r["arm"]: r for r in clicked["arms"]}
    for arm in ("control", "treat"):
        members = [v for v, a in arms.items() if a == arm]
        assert rows[arm]["n"] == len(members)
        assert rows[arm]["mean"] == pytest.approx(
            sum(v in clickers for v in members) / len(members)
        )
    assert body["srm"]["counts"] == {
        "control": rows["control"]["n"],
        "treat": rows["treat"]["n"],
    }
    revenue = next(m for m in body["metrics"] if m["name"] == "revenue")
    total = sum(r["mean"] * r["n"] for r in revenue["arms"])
    assert total == pytest.approx(20.0)
    assert rows["treat"]["cuped"] is not None
    assert [s["segment"] for s in clicked["segments"]] == ["phones"]
    phones = sum(r["n"] for r in clicked["segments"][0]["arms"])
    assert phones == 20
    assert (
        sum(e["cumulative"] for e in body["exposure"] if e["day"] == body["exposure"][-1]["day"])
        == 60
    )

    report = await client.get("/v1/experiments/exp1/report", headers=ADMIN)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert "exp1" in report.text

    stopped = await client.post("/v1/experiments/exp1/stop", headers=ADMIN)
    assert stopped.json()["status"] == "stopped"
    d = await decide(client, "v0")
    assert "experiment" not in d


async def test_erasing_a_visitor_takes_them_out_of_the_sums(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await setup(client)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    for visitor in ("ann", "bob"):
        await events(client, {"type": "page_view", "visitor_id": visitor})
        await decide(client, visitor)
    await app.state.services.decision_log.flush()
    await events(client, {"type": "click", "visitor_id": "ann", "item_id": "x"})
    before = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    exported = (await client.get("/v1/visitors/ann", headers=ADMIN)).json()
    assert exported["experiments"]["exp1"]["metrics"] == {"clicked": 1.0}
    assert (await client.delete("/v1/visitors/ann", headers=ADMIN)).status_code in (200, 204)
    after = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    n_before = sum(r["n"] for r in before["metrics"][0]["arms"])
    n_after = sum(r["n"] for r in after["metrics"][0]["arms"])
    assert (n_before, n_after) == (2, 1)
    assert all(r["mean"] in (None, 0.0) for r in after["metrics"][0]["arms"])


async def test_a_running_experiment_is_frozen(client: httpx.AsyncClient) -> None:
    await setup(client)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    changed = {**AB, "arms": [{"name": "control", "variant": "a"}, {"name": "x", "variant": "c"}]}
    response = await client.put("/v1/experiments/exp1", headers=ADMIN, json=changed)
    assert response.status_code == 409
    assert "stop it and create a new experiment" in response.json()["error"]["message"]
    same = {**AB, "description": "now with a description"}
    assert (await client.put("/v1/experiments/exp1", headers=ADMIN, json=same)).status_code == 200


async def test_a_click_sent_with_the_token_before_the_exposure_is_written_still_counts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A site sends impression and click right after decide; the exposure waits in the
    worker's buffer (written every 50 ms), and must not make the click vanish."""
    scoped = {
        **AB,
        "metrics": [
            {"name": "clicked", "event": "click", "primary": True},
            {"name": "block_clicks", "event": "click", "aggregation": "count", "scope": "token"},
        ],
    }
    await setup(client, scoped)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    d = await decide(client, "quick")
    token = {"visitor_id": "quick", "token": d["token"]}
    await events(client, {**token, "type": "click"}, {**token, "type": "click"})
    await events(client, {"type": "click", "visitor_id": "quick", "item_id": "elsewhere"})
    before = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    assert all(r["n"] == 0 for m in before["metrics"] for r in m["arms"])  # not yet exposed
    await app.state.services.decision_log.flush()
    after = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    means = {
        m["name"]: {r["arm"]: (r["n"], r["mean"]) for r in m["arms"]} for m in after["metrics"]
    }
    assert means["clicked"][d["arm"]] == (1, 1.0)
    # the token-scoped count ignores the click on another block
    assert means["block_clicks"][d["arm"]] == (1, 2.0)


async def test_a_buffered_exposure_does_not_bring_an_erased_visitor_back(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await setup(client)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    await decide(client, "gone")  # its exposure is buffered, not written yet
    assert (await client.delete("/v1/visitors/gone", headers=ADMIN)).status_code in (200, 204)
    await app.state.services.decision_log.flush()
    results = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    assert sum(r["n"] for r in results["metrics"][0]["arms"]) == 0
    exported = (await client.get("/v1/visitors/gone", headers=ADMIN)).json()
    assert exported["experiments"] == {}


async def test_what_the_engine_manages_comes_back_from_a_get_but_cannot_be_set(
    client: httpx.AsyncClient,
) -> None:
    await setup(client)
    got = (await client.get("/v1/experiments/exp1", headers=ADMIN)).json()
    assert got["status"] == "draft"
    round_trip = {k: v for k, v in got.items() if k != "id"}
    assert (
        await client.put("/v1/experiments/exp1", headers=ADMIN, json=round_trip)
    ).status_code == 200
    for field, value in (("status", "running"), ("started_at", 1.0), ("bucket", [0, 0.5])):
        response = await client.put(
            "/v1/experiments/exp1", headers=ADMIN, json={**AB, field: value}
        )
        assert response.status_code == 422
        assert response.json()["error"]["message"] == f"{field}: set by the engine (start, stop)"
    assert (await client.get("/v1/experiments/exp1", headers=ADMIN)).json()["status"] == "draft"


async def test_a_click_waiting_for_its_exposure_survives_an_identity_merge(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await setup(client)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    d = await decide(client, "anon")  # exposure buffered
    await events(client, {"visitor_id": "anon", "token": d["token"], "type": "click"})
    identify = {"type": "identify", "visitor_id": "anon", "properties": {"customer_id": "cust"}}
    await events(client, identify)
    await app.state.services.decision_log.flush()  # lands on the customer's profile
    body = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    rows = {r["arm"]: r for r in body["metrics"][0]["arms"]}
    assert (rows[d["arm"]]["n"], rows[d["arm"]]["mean"]) == (1, 1.0)


async def test_a_browser_clock_behind_the_servers_loses_no_outcome(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await setup(client)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    d = await decide(client, "slow-clock")
    await app.state.services.decision_log.flush()
    behind = time.time() - 20.0  # the visitor's clock is 20 s slow
    click = {"visitor_id": "slow-clock", "token": d["token"], "type": "click", "ts": behind}
    order = {
        "type": "purchase",
        "visitor_id": "slow-clock",
        "ts": behind,
        "properties": {"order_id": "o9", "items": [{"item_id": "x", "price": 5.0, "qty": 1}]},
    }
    await events(client, click, order)
    body = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    means = {m["name"]: {r["arm"]: r["mean"] for r in m["arms"]} for m in body["metrics"]}
    assert means["clicked"][d["arm"]] == 1.0
    assert means["revenue"][d["arm"]] == 5.0


async def test_a_slot_change_that_would_break_a_running_experiment_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await setup(client)
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    without_b = {**SLOT, "variants": [v for v in SLOT["variants"] if v["id"] != "b"]}
    response = await client.put("/v1/slots/hero", headers=ADMIN, json=without_b)
    assert response.status_code == 409
    assert "stop the experiment first" in response.json()["error"]["message"]
    assert (await client.delete("/v1/slots/hero", headers=ADMIN)).status_code == 409
    harmless = {**SLOT, "description": "copy edits are fine"}
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=harmless)).status_code == 200
    await client.post("/v1/experiments/exp1/stop", headers=ADMIN)
    assert (await client.put("/v1/slots/hero", headers=ADMIN, json=without_b)).status_code == 200


async def results_of(client: httpx.AsyncClient) -> dict[str, tuple[int, float | None]]:
    body = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    return {r["arm"]: (r["n"], r["mean"]) for r in body["metrics"][0]["arms"]}


async def test_with_exposure_at_the_impression_only_visitors_who_saw_the_block_count(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The snippet sends an impression when a block is half visible; a visitor whose page
    timed out (anti-flicker) or who never scrolled to it is not in the test."""
    await setup(client, {**AB, "exposure": "impression"})
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    log = app.state.services.decision_log

    unseen = await decide(client, "never-saw-it")
    seen = await decide(client, "saw-it")
    early = await decide(client, "impression-first")
    await events(
        client, {"visitor_id": "impression-first", "token": early["token"], "type": "impression"}
    )
    await log.flush()
    counted = await results_of(client)
    assert sum(n for n, _ in counted.values()) == 1  # only the impression that came first

    # a click with the token before the impression waits, and counts with it
    token = {"visitor_id": "saw-it", "token": seen["token"]}
    await events(client, {**token, "type": "click"})
    assert sum(n for n, _ in (await results_of(client)).values()) == 1
    await events(client, {**token, "type": "impression"}, {**token, "type": "impression"})
    counted = await results_of(client)
    assert sum(n for n, _ in counted.values()) == 2
    clicks = sum(n * (mean or 0.0) for n, mean in counted.values())
    assert clicks == 1.0

    # a token-less outcome of the visitor who never saw the block counts nothing
    await events(client, {"type": "click", "visitor_id": "never-saw-it", "item_id": "x"})
    assert sum(n for n, _ in (await results_of(client)).values()) == 2
    exported = (await client.get("/v1/visitors/never-saw-it", headers=ADMIN)).json()
    assert exported["experiments"]["exp1"]["confirmed"] is False
    assert exported["experiments"]["exp1"]["arm"] == unseen["arm"]

    # erasing a counted visitor takes them out as with decision exposure
    assert (await client.delete("/v1/visitors/saw-it", headers=ADMIN)).status_code in (200, 204)
    assert sum(n for n, _ in (await results_of(client)).values()) == 1


async def test_exposure_at_the_impression_is_for_slots(client: httpx.AsyncClient) -> None:
    body = {
        "target": "recommendations",
        "arms": [{"name": "a"}, {"name": "b"}],
        "metrics": [{"name": "clicked", "event": "click"}],
        "exposure": "impression",
    }
    response = await client.put("/v1/experiments/recs1", headers=ADMIN, json=body)
    assert response.status_code == 422


async def test_a_waiting_exposure_follows_an_identity_merge_and_is_confirmed_there(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await setup(client, {**AB, "exposure": "impression"})
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    d = await decide(client, "anon")
    await app.state.services.decision_log.flush()  # waiting on the anonymous profile
    identify = {"type": "identify", "visitor_id": "anon", "properties": {"customer_id": "cust"}}
    await events(client, identify)
    await events(client, {"visitor_id": "anon", "token": d["token"], "type": "impression"})
    counted = await results_of(client)
    assert counted[d["arm"]][0] == 1
    exported = (await client.get("/v1/visitors/cust", headers=ADMIN)).json()
    assert exported["experiments"]["exp1"]["confirmed"] is True


async def test_an_impression_on_one_device_confirms_the_persons_waiting_exposure(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The device's impression arrives before its exposure is written (a marker waits);
    the customer's own exposure waits for an impression; the merge joins the two."""
    await setup(client, {**AB, "exposure": "impression"})
    await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    log = app.state.services.decision_log
    await decide(client, "cust")
    await log.flush()  # the customer's exposure waits for an impression
    device = await decide(client, "device")  # buffered
    await events(client, {"visitor_id": "device", "token": device["token"], "type": "impression"})
    identify = {"type": "identify", "visitor_id": "device", "properties": {"customer_id": "cust"}}
    await events(client, identify)
    await log.flush()  # the device's exposure lands on the customer: already confirmed
    counted = await results_of(client)
    assert sum(n for n, _ in counted.values()) == 1  # one person
    exported = (await client.get("/v1/visitors/cust", headers=ADMIN)).json()
    assert exported["experiments"]["exp1"]["confirmed"] is True
