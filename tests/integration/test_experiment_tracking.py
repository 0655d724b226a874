"""Experiment tracking over HTTP with the real Redis, checked to the last digit: the
sums in an experiment's stats hash equal a recomputation from what each visitor did
(kept by the test), through windows, consent, segments, erasure and identity merges;
and the lifecycle: layer stretches, conflicts, stop being final and freezing results."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from engine.decisions.log import DecisionLog, Exposure, LogTarget
from engine.experiments.assignment import assign
from engine.experiments.definitions import HOLDOUT_ARM
from engine.experiments.results import ALL, Sums, read_sums
from tests.conftest import ADMIN, SITE

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SLOT = {
    "variants": [{"id": v, "content": {"title": v}} for v in ("a", "b", "c")],
    "default": "a",
}
METRICS = [
    {"name": "clicked", "event": "click"},  # conversion, 7 days
    {"name": "quick_clicks", "event": "click", "aggregation": "count", "window_s": 60},
    {"name": "revenue", "event": "purchase", "aggregation": "sum"},
    {"name": "views", "event": "page_view", "aggregation": "count"},
]
EXPERIMENT = {
    "target": "slot:hero",
    "arms": [{"name": "control", "variant": "a"}, {"name": "treat", "variant": "b", "weight": 2}],
    "metrics": METRICS,
    "holdout": 0.1,
    "covariate": "page_views",
    "segments": ["phones"],
}
NAMES = [m["name"] for m in METRICS]
ARMS = ("control", "treat", HOLDOUT_ARM)


@dataclass
class Visitor:
    """What the test knows a person did, to recompute the sums from."""

    arm: str | None = None  # None: never counted (not exposed, erased, merged away)
    x: float = 0.0  # page views before the first exposure (the covariate)
    segments: tuple[str, ...] = ()
    decided: tuple[float, float] = (0.0, 0.0)  # the exposure happened between these
    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(NAMES, 0.0))


Book = dict[str, Visitor]


async def define(client: httpx.AsyncClient, experiment: dict[str, Any] = EXPERIMENT) -> None:
    phones = {"when": {"attr": "context.device", "op": "eq", "value": "mobile"}}
    assert (await client.put("/v1/segments/phones", headers=ADMIN, json=phones)).status_code == 201
    for slot in ("hero", "footer"):
        response = await client.put(f"/v1/slots/{slot}", headers=ADMIN, json=SLOT)
        assert response.status_code == 201, response.text
    response = await client.put("/v1/experiments/exp1", headers=ADMIN, json=experiment)
    assert response.status_code == 201, response.text
    response = await client.post("/v1/experiments/exp1/start", headers=ADMIN)
    assert response.status_code == 200, response.text


async def decide(
    client: httpx.AsyncClient, visitor: str, device: str = "desktop", slot: str = "hero"
) -> Any:
    body = {"visitor_id": visitor, "slots": [slot], "context": {"device": device}}
    response = await client.post("/v1/decide", headers=SITE, json=body)
    assert response.status_code == 200, response.text
    return response.json()["decisions"][0]


async def send(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for start in range(0, len(items), 500):
        response = await client.post(
            "/v1/events", headers=SITE, json={"events": items[start : start + 500]}
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["rejected"] == [], body
    return body


async def expose(
    app: FastAPI,
    client: httpx.AsyncClient,
    book: Book,
    visitor: str,
    *,
    device: str = "desktop",
    counted: bool = True,
    slot: str = "hero",
    experiment: str = "exp1",
) -> Any:
    """Decide for the visitor as a person seen for the first time; book their exposure."""
    before = time.time()
    d = await decide(client, visitor, device, slot)
    after = time.time()
    assert d["experiment"] == experiment
    person = book.setdefault(visitor, Visitor())
    if counted:
        person.arm = d["arm"]
        person.segments = ("phones",) if device == "mobile" and experiment == "exp1" else ()
        person.decided = (before, after)
    await app.state.services.decision_log.flush()
    return d


def click(visitor: str, ts: float) -> dict[str, Any]:
    return {"type": "click", "visitor_id": visitor, "item_id": "i1", "ts": ts}


def page_view(visitor: str, ts: float | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "page_view", "visitor_id": visitor}
    if ts is not None:
        event["ts"] = ts
    return event


def purchase(visitor: str, ts: float, price: float, qty: int) -> dict[str, Any]:
    items = [{"item_id": "i1", "price": price, "qty": qty}]
    return {
        "type": "purchase",
        "visitor_id": visitor,
        "ts": ts,
        "properties": {"order_id": f"o-{visitor}-{ts}", "items": items},
    }


def behave(rng: np.random.Generator, name: str, person: Visitor) -> list[dict[str, Any]]:
    """A visitor's events after their exposure, with what each does to their metrics
    booked: in the window (1 s after exposure), late (120 s: past the 60 s window of
    `quick_clicks`, inside the others') and early (30 s before exposure: nowhere)."""
    before, after = person.decided
    counted = person.arm is not None
    v = person.values
    events: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(0, 3))):
        events.append(click(name, after + 1.0))
        if counted:
            v["clicked"] = 1.0
            v["quick_clicks"] += 1
    if rng.random() < 0.2:
        events.append(click(name, after + 120.0))
        if counted:
            v["clicked"] = 1.0
    if rng.random() < 0.2:
        events.append(click(name, before - 30.0))
    for _ in range(int(rng.integers(0, 3)) * (rng.random() < 0.4)):
        price, qty = round(float(rng.uniform(1.0, 80.0)), 2), int(rng.integers(1, 4))
        events.append(purchase(name, after + 2.0, price, qty))
        if counted:
            v["revenue"] += round(price * qty, 2)
    for _ in range(int(rng.integers(0, 4))):
        events.append(page_view(name, after + 3.0))
        if counted:
            v["views"] += 1
    if rng.random() < 0.2:
        events.append(page_view(name, before - 30.0))
    return events


async def build(app: FastAPI, client: httpx.AsyncClient, n: int, seed: int) -> Book:
    """`n` visitors: prior page views (the covariate varies), phones and desktops, some
    refusing analytics, all decided under the experiment, then their behaviour sent."""
    rng = np.random.default_rng(seed)
    book: Book = {}
    names = [f"v{i:03d}" for i in range(n)]
    prior: list[dict[str, Any]] = []
    for name in names:
        k = int(rng.integers(0, 6))
        book[name] = Visitor(x=float(k))
        prior += [page_view(name)] * k
    await send(client, prior)
    refusing = set(names[7::20])
    for name in refusing:
        consent = {"personalization": True, "analytics": False}
        response = await client.put(f"/v1/visitors/{name}/consent", headers=SITE, json=consent)
        assert response.status_code == 200, response.text
    for name in names:
        device = "mobile" if rng.random() < 0.35 else "desktop"
        await expose(app, client, book, name, device=device, counted=name not in refusing)
    for name in refusing:
        book[name].decided = (time.time(), time.time())  # their events are sent all the same
    events = [e for name in names for e in behave(rng, name, book[name])]
    order = rng.permutation(len(events))  # visitors' events interleave, as on a site
    await send(client, [events[i] for i in order])
    return book


def expected(book: Book) -> Sums:
    """The stats hash recomputed from the book: what the Lua scripts must have summed."""
    sums = Sums()
    days: dict[tuple[int, str], int] = defaultdict(int)
    for person in book.values():
        if person.arm is None:
            continue
        days[(int(person.decided[0] // 86_400), person.arm)] += 1
        for seg in (ALL, *person.segments):
            sums.n[(person.arm, seg)] += 1
            sums.x[(person.arm, seg)] += person.x
            sums.xx[(person.arm, seg)] += person.x**2
            for metric, y in person.values.items():
                sums.s[(metric, person.arm, seg)] += y
                sums.ss[(metric, person.arm, seg)] += y * y
                sums.xy[(metric, person.arm, seg)] += person.x * y
    sums.days.update(days)
    return sums


def assert_equal_sums(actual: Sums, wanted: Sums) -> None:
    for name in ("n", "x", "xx", "s", "ss", "xy", "days"):
        got, want = getattr(actual, name), getattr(wanted, name)
        for key in set(got) | set(want):
            assert got.get(key, 0) == pytest.approx(want.get(key, 0), rel=1e-12, abs=1e-9), (
                name,
                key,
            )


async def sums_of(app: FastAPI, experiment: str = "exp1") -> Sums:
    return await read_sums(app.state.services.store, experiment)


async def test_stats_equal_a_recomputation_from_every_visitors_events(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=200, seed=42)
    actual, wanted = await sums_of(app), expected(book)
    assert_equal_sums(actual, wanted)
    # the book is not trivially empty: each rule above had visitors to act on
    counted = [p for p in book.values() if p.arm is not None]
    assert len(counted) == 190
    assert {p.arm for p in counted} == {"control", "treat", HOLDOUT_ARM}
    assert 0 < actual.n[("control", "phones")] < actual.n[("control", ALL)]
    assert len({p.x for p in counted}) == 6
    clickers = sum(p.values["clicked"] for p in counted)
    assert 0 < clickers < sum(p.values["quick_clicks"] for p in counted)
    assert any(p.values["clicked"] and not p.values["quick_clicks"] for p in counted)
    assert actual.s[("revenue", "treat", ALL)] > 0
    # a conversion is 0 or 1 per visitor, so its sum of squares is its sum
    for arm in ("control", "treat", HOLDOUT_ARM):
        assert actual.ss[("clicked", arm, ALL)] == pytest.approx(actual.s[("clicked", arm, ALL)])
    body = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    assert body["srm"]["counts"] == {a: wanted.n[(a, ALL)] for a in ("control", "treat")}


async def test_a_visitor_refusing_analytics_is_assigned_but_never_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    consent = {"personalization": True, "analytics": False}
    response = await client.put("/v1/visitors/shy/consent", headers=SITE, json=consent)
    assert response.status_code == 200
    d = await decide(client, "shy")
    assert d["arm"] in ("control", "treat", HOLDOUT_ARM)  # shown the arm's variant
    await app.state.services.decision_log.flush()
    now = time.time()
    body = await send(client, [click("shy", now), purchase("shy", now, 10.0, 1)])
    assert body["without_consent"] == 2
    sums = await sums_of(app)
    assert sum(sums.n.values()) == 0
    assert sum(sums.s.values()) == 0


async def test_a_replayed_event_counts_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    await define(client)
    book: Book = {}
    await expose(app, client, book, "ann")
    at = book["ann"].decided[1] + 1.0
    replayed = [
        {**purchase("ann", at, 19.99, 3), "event_id": "order-1"},
        {**click("ann", at), "event_id": "click-1"},
    ]
    await send(client, replayed)
    body = await send(client, replayed)
    assert body["duplicates"] == 2
    book["ann"].values.update(clicked=1.0, quick_clicks=1.0, revenue=59.97)
    assert_equal_sums(await sums_of(app), expected(book))


MVT = {
    "target": "slot:footer",
    "type": "mvt",
    "base": "b",
    "factors": [
        {"name": "colour", "levels": [{"name": "grey"}, {"name": "red", "patch": {"c": "red"}}]},
        {"name": "size", "levels": [{"name": "s"}, {"name": "l", "patch": {"title": "big"}}]},
    ],
    "metrics": METRICS,
    "covariate": "page_views",
}


async def test_mvt_cells_are_tracked_under_their_level_names(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    assert (await client.put("/v1/experiments/mvt1", headers=ADMIN, json=MVT)).status_code == 201
    assert (await client.post("/v1/experiments/mvt1/start", headers=ADMIN)).status_code == 200
    rng = np.random.default_rng(9)
    book: Book = {}
    contents = {}
    for i in range(40):
        name = f"m{i:02d}"
        k = int(rng.integers(0, 4))
        if k:
            await send(client, [page_view(name)] * k)
        book[name] = Visitor(x=float(k))
        d = await expose(app, client, book, name, slot="footer", experiment="mvt1")
        contents[d["arm"]] = (d["variant"], d["content"])
    assert contents == {
        "grey|s": ("b", {"title": "b"}),
        "grey|l": ("b", {"title": "big"}),
        "red|s": ("b", {"title": "b", "c": "red"}),
        "red|l": ("b", {"title": "big", "c": "red"}),
    }
    await send(client, [e for name, p in book.items() for e in behave(rng, name, p)])
    sums = await sums_of(app, "mvt1")
    assert_equal_sums(sums, expected(book))
    assert {arm for arm, _ in sums.n} == set(contents)
    body = (await client.get("/v1/experiments/mvt1/results", headers=ADMIN)).json()
    clicked = next(m for m in body["metrics"] if m["name"] == "clicked")
    assert {c["cell"]: c["n"] for c in clicked["cells"]} == {
        cell: sums.n[(cell, ALL)] for cell in contents
    }


async def test_erasure_takes_out_exactly_the_visitors_contribution(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=60, seed=7)
    gone = [name for name, p in book.items() if p.arm is not None and any(p.values.values())]
    gone = [*gone[:3], next(n for n, p in book.items() if "phones" in p.segments)]
    for name in gone:
        response = await client.delete(f"/v1/visitors/{name}", headers=ADMIN)
        assert response.status_code == 200, response.text
        book[name].arm = None
    assert_equal_sums(await sums_of(app), expected(book))
    for name in gone:  # idempotent: a second erasure takes nothing out twice
        assert (await client.delete(f"/v1/visitors/{name}", headers=ADMIN)).status_code == 200
    assert_equal_sums(await sums_of(app), expected(book))


async def test_a_merged_person_exposed_twice_counts_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=20, seed=3)
    await expose(app, client, book, "anon", device="mobile")
    await expose(app, client, book, "cust")
    rng = np.random.default_rng(5)
    await send(client, behave(rng, "anon", book["anon"]) + behave(rng, "cust", book["cust"]))
    await send(client, [click("anon", book["anon"].decided[1] + 1.0)])
    book["anon"].values["clicked"] = 1.0
    book["anon"].values["quick_clicks"] += 1
    before = await sums_of(app)
    assert_equal_sums(before, expected(book))

    identify = {"type": "identify", "visitor_id": "anon", "properties": {"customer_id": "cust"}}
    await send(client, [identify])
    # one person, in the customer's arm, with both sides' values combined: a conversion
    # by max, counts and sums by adding
    anon, cust = book["anon"], book["cust"]
    for m in METRICS:
        a, c = anon.values[m["name"]], cust.values[m["name"]]
        cust.values[m["name"]] = max(a, c) if "aggregation" not in m else a + c
    anon.arm = None  # the anonymous exposure leaves; the customer's stays
    sums = await sums_of(app)
    assert sum(sums.n[(a, ALL)] for a in ARMS) == sum(before.n[(a, ALL)] for a in ARMS) - 1
    assert_equal_sums(sums, expected(book))

    # later events of the device count once more, in the customer's arm
    at = book["cust"].decided[1] + 5.0
    await send(client, [purchase("anon", at, 12.5, 2), page_view("anon", at)])
    book["cust"].values["revenue"] += 25.0
    book["cust"].values["views"] += 1
    assert_equal_sums(await sums_of(app), expected(book))


async def test_a_merged_visitors_exposure_moves_to_the_customer(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=20, seed=4)
    await expose(app, client, book, "anon", device="mobile")
    anon = book["anon"]
    await send(client, [purchase("anon", anon.decided[1] + 1.0, 10.0, 1)])
    anon.values["revenue"] = 10.0
    identify = {"type": "identify", "visitor_id": "anon", "properties": {"customer_id": "cust"}}
    await send(client, [identify])
    assert_equal_sums(await sums_of(app), expected(book))  # nothing moved in the sums

    # the customer's own later outcomes count in the visitor's arm and segments
    at = anon.decided[1] + 2.0
    await send(client, [click("cust", at), purchase("cust", at, 4.25, 2), page_view("cust", at)])
    anon.values.update(clicked=1.0, quick_clicks=1.0, views=1.0)
    anon.values["revenue"] += 8.5
    assert_equal_sums(await sums_of(app), expected(book))
    # and a decide for the customer does not count the person a second time
    await decide(client, "cust")
    await app.state.services.decision_log.flush()
    assert_equal_sums(await sums_of(app), expected(book))
    # erasing the device's id erases the person, and their moved record with them
    assert (await client.delete("/v1/visitors/anon", headers=ADMIN)).status_code == 200
    anon.arm = None
    assert_equal_sums(await sums_of(app), expected(book))


async def late_exposure(app: FastAPI, visitor: str) -> tuple[DecisionLog, str, float]:
    """An exposure of `visitor` that another worker decided and has not flushed yet
    (a worker keeps them while Redis is away): its log, the arm, the decide time."""
    services = app.state.services
    pid = services.pseudonymize(visitor)
    assignment = assign(services.registry.current.experiments["exp1"], pid)
    assert assignment is not None
    worker = DecisionLog(services.store, LogTarget(1000, services.settings.visitor_ttl_s, 100))
    at = time.time()
    worker.expose(pid, Exposure("exp1", assignment.arm, at, 0.0, ()))
    return worker, assignment.arm, at


async def test_an_exposure_flushed_after_a_merge_counts_the_person_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=10, seed=8)
    await expose(app, client, book, "cust")
    worker, _, _ = await late_exposure(app, "anon")
    identify = {"type": "identify", "visitor_id": "anon", "properties": {"customer_id": "cust"}}
    await send(client, [identify])
    await worker.flush()
    assert_equal_sums(await sums_of(app), expected(book))


async def test_an_exposure_flushed_after_a_merge_lands_on_the_customer(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=10, seed=9)
    worker, arm, at = await late_exposure(app, "anon")
    identify = {"type": "identify", "visitor_id": "anon", "properties": {"customer_id": "cust"}}
    await send(client, [identify])
    await worker.flush()
    book["anon"] = Visitor(arm=arm, decided=(at, at))
    assert_equal_sums(await sums_of(app), expected(book))
    # so the person's later outcomes, from either id, count in that arm
    await send(client, [click("cust", at + 1.0), purchase("anon", at + 1.0, 3.0, 1)])
    book["anon"].values.update(clicked=1.0, quick_clicks=1.0, revenue=3.0)
    assert_equal_sums(await sums_of(app), expected(book))


# lifecycle


async def put(client: httpx.AsyncClient, experiment_id: str, **fields: Any) -> None:
    body = {
        "target": "slot:hero",
        "arms": [{"name": "control", "variant": "a"}, {"name": "treat", "variant": "b"}],
        "metrics": [{"name": "clicked", "event": "click"}],
        **fields,
    }
    response = await client.put(f"/v1/experiments/{experiment_id}", headers=ADMIN, json=body)
    assert response.status_code == 201, response.text


async def start(client: httpx.AsyncClient, experiment_id: str) -> httpx.Response:
    return await client.post(f"/v1/experiments/{experiment_id}/start", headers=ADMIN)


async def stop(client: httpx.AsyncClient, experiment_id: str) -> httpx.Response:
    return await client.post(f"/v1/experiments/{experiment_id}/stop", headers=ADMIN)


async def status(client: httpx.AsyncClient, experiment_id: str) -> str:
    listed = (await client.get("/v1/experiments", headers=ADMIN)).json()["experiments"]
    return str(next(e["status"] for e in listed if e["id"] == experiment_id))


async def test_starts_in_a_layer_take_disjoint_stretches_first_fit(
    client: httpx.AsyncClient,
) -> None:
    await define(client, {**EXPERIMENT, "layer": "ui", "traffic": 0.3})
    await put(client, "exp2", target="slot:footer", layer="ui", traffic=0.5)
    await put(client, "exp3", layer="ui", traffic=0.3)
    await put(client, "exp4", target="slot:footer", layer="ui", traffic=0.2)
    await put(client, "exp5", layer="other")
    assert (await client.get("/v1/experiments/exp1", headers=ADMIN)).json()["bucket"] == [0, 0.3]
    assert (await start(client, "exp2")).json()["bucket"] == [0.3, 0.8]
    refused = await start(client, "exp3")  # 0.2 left in the layer
    assert refused.status_code == 409
    assert "layer 'ui' has no free stretch of 0.3" in refused.json()["error"]["message"]
    assert await status(client, "exp3") == "draft"
    assert (await stop(client, "exp1")).status_code == 200
    assert (await start(client, "exp3")).json()["bucket"] == [0, 0.3]  # the first gap
    assert (await start(client, "exp4")).json()["bucket"] == pytest.approx([0.8, 1.0])
    # a running experiment in another layer on the same slot could share visitors
    assert (await start(client, "exp5")).status_code == 409


async def test_two_experiments_on_one_slot_outside_one_layer_conflict(
    client: httpx.AsyncClient,
) -> None:
    await define(client)
    await put(client, "exp2")
    await put(client, "exp3", layer="ui")
    await put(client, "exp4", target="slot:footer")
    for other in ("exp2", "exp3"):
        response = await start(client, other)
        assert response.status_code == 409, other
        assert "exp1 already run on slot:hero outside" in response.json()["error"]["message"]
    assert (await start(client, "exp4")).status_code == 200  # another slot: no clash


async def test_a_stopped_experiment_is_final(client: httpx.AsyncClient) -> None:
    await define(client)
    assert (await stop(client, "exp1")).json()["status"] == "stopped"
    again = await start(client, "exp1")
    assert again.status_code == 409
    assert "is stopped, not a draft" in again.json()["error"]["message"]
    assert (await stop(client, "exp1")).status_code == 409
    assert await status(client, "exp1") == "stopped"


async def test_a_stopped_experiments_results_stay_readable_and_stop_changing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await define(client)
    book = await build(app, client, n=30, seed=11)
    assert (await stop(client, "exp1")).status_code == 200
    frozen = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    assert frozen["experiment"]["status"] == "stopped"
    assert sum(frozen["srm"]["counts"].values()) > 0
    rng = np.random.default_rng(12)
    events = [e for name, person in book.items() for e in behave(rng, name, person)]
    await send(client, events)
    d = await decide(client, "newcomer")
    assert "experiment" not in d
    await app.state.services.decision_log.flush()
    after = (await client.get("/v1/experiments/exp1/results", headers=ADMIN)).json()
    assert after == frozen


async def test_a_definition_of_the_wrong_shape_is_refused_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put("/v1/slots/hero", headers=ADMIN, json=SLOT)
    assert response.status_code == 201
    for wrong in ({"control": ["control"]}, {"arms": [{"name": "x", "variant": ["a"]}] * 2}):
        response = await client.put(
            "/v1/experiments/exp9", headers=ADMIN, json={**EXPERIMENT, **wrong}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_input"
    assert (await client.get("/v1/experiments/exp9", headers=ADMIN)).status_code == 404
