"""What can be load-tested: each target prepares the engine through the API, then
gives the request bytes to send. Adding a target is adding one entry to TARGETS."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson

from loadtests.client import build_request

VISITORS = 100
SLOT = "loadtest_hero"
SLOT_DEFINITION = {
    "variants": [{"id": "a", "content": {"title": "A"}}, {"id": "b", "content": {"title": "B"}}],
    "default": "a",
    "policy": "rules",
    "rules": [{"when": {"attr": "features.page_views", "op": "gte", "value": 3}, "variant": "b"}],
}


@dataclass(frozen=True)
class Keys:
    site: str
    admin: str


def visitor(i: int) -> str:
    return f"lt-{i:04d}"


def bare_requests(host: str, keys: Keys) -> list[bytes]:
    return [build_request("GET", "/healthz", host)]


def setup_decide(client: httpx.Client, keys: Keys) -> None:
    response = client.put(
        f"/v1/slots/{SLOT}", headers={"X-Admin-Key": keys.admin}, json=SLOT_DEFINITION
    )
    response.raise_for_status()
    # half the visitors have history, so both rule outcomes are exercised
    events = [
        {"type": "page_view", "visitor_id": visitor(i), "properties": {"category": "sports"}}
        for i in range(0, VISITORS, 2)
        for _ in range(3)
    ]
    client.post(
        "/v1/events", headers={"X-Api-Key": keys.site}, json={"events": events}
    ).raise_for_status()


def decide_requests(host: str, keys: Keys) -> list[bytes]:
    return _decide_requests(host, keys, SLOT, {"device": "mobile"})


def _decide_requests(host: str, keys: Keys, slot: str, context: dict[str, str]) -> list[bytes]:
    """One decide request per load-test visitor for `slot`."""
    headers = {"X-Api-Key": keys.site, "Content-Type": "application/json"}
    return [
        build_request(
            "POST",
            "/v1/decide",
            host,
            headers,
            orjson.dumps({"visitor_id": visitor(i), "slots": [slot], "context": context}),
        )
        for i in range(VISITORS)
    ]


EVENTS_PER_BATCH = 100
EVENT_VISITORS = 5_000
EVENT_BODIES = 50
CATEGORIES = ("shoes", "bags", "hats", "shirts", "sports", "books", "garden", "toys")


def setup_events(client: httpx.Client, keys: Keys) -> None:
    """Nothing to define: events need no slot. Checks the key works."""
    probe = {"type": "page_view", "visitor_id": visitor(0)}
    client.post(
        "/v1/events", headers={"X-Api-Key": keys.site}, json={"events": [probe]}
    ).raise_for_status()


def event_batch(seed: int) -> list[dict[str, object]]:
    """A collector's batch: 100 events of many visitors, mostly views, some carts and orders.

    No `event_id` and no `ts`: the engine stamps both, so repeating the same bytes is
    fresh work every time instead of duplicates it would skip.
    """
    events: list[dict[str, object]] = []
    for j in range(EVENTS_PER_BATCH):
        n = seed * EVENTS_PER_BATCH + j
        who = visitor((n * 7919) % EVENT_VISITORS)
        category = CATEGORIES[n % len(CATEGORIES)]
        item = f"sku-{n % 500}"
        if n % 20 == 0:
            events.append(
                {
                    "type": "purchase",
                    "visitor_id": who,
                    "channel": "web",
                    "properties": {
                        "order_id": f"o-{n}",
                        "items": [{"item_id": item, "price": 19.9, "category": category}],
                    },
                }
            )
        elif n % 10 == 0:
            events.append({"type": "add_to_cart", "visitor_id": who, "item_id": item})
        else:
            events.append(
                {
                    "type": "page_view",
                    "visitor_id": who,
                    "channel": "app" if n % 3 == 0 else "web",
                    "item_id": item,
                    "properties": {"category": category, "url": f"/p/{item}"},
                }
            )
    return events


def events_requests(host: str, keys: Keys) -> list[bytes]:
    headers = {"X-Api-Key": keys.site, "Content-Type": "application/json"}
    return [
        build_request("POST", "/v1/events", host, headers, orjson.dumps({"events": event_batch(s)}))
        for s in range(EVENT_BODIES)
    ]


RECS_VISITORS = 400  # distinct visitors per kind, so no cache could serve a repeat
RECS_CLICKS = 5
CATALOGUE_BATCH = 1000


def setup_recs(client: httpx.Client, keys: Keys) -> None:
    """Activate the newest recommender (made by `python -m loadtests recs-model`), load
    its items as the catalogue (1% unavailable, 20 categories) and give the fold-in
    visitors a few clicks each."""
    admin = {"X-Admin-Key": keys.admin}
    listing = client.get("/v1/models", headers=admin)
    listing.raise_for_status()
    versions = listing.json()["versions"]["recs"]
    if not versions:
        raise ValueError("no recommender on the server: run python -m loadtests recs-model")
    newest = versions[0]
    n_items = int(newest["manifest"]["data"]["items"])
    for start in range(0, n_items, CATALOGUE_BATCH):
        batch = [
            {
                "item_id": recs_item(j),
                "category": f"cat-{j % 20}",
                "price": 10.0,
                "available": j % 100 != 7,
            }
            for j in range(start, min(n_items, start + CATALOGUE_BATCH))
        ]
        client.put("/v1/items", headers=admin, json={"items": batch}).raise_for_status()
    client.post(f"/v1/models/recs/{newest['version']}/activate", headers=admin).raise_for_status()
    clicks = [
        {"type": "click", "visitor_id": f"lt-f{i}", "item_id": recs_item((i * 7919 + k) % n_items)}
        for i in range(RECS_VISITORS)
        for k in range(RECS_CLICKS)
    ]
    for start in range(0, len(clicks), 500):
        client.post(
            "/v1/events",
            headers={"X-Api-Key": keys.site},
            json={"events": clicks[start : start + 500]},
        ).raise_for_status()
    for _ in range(100):  # workers poll for the new version every few seconds
        ready = client.get("/readyz").json()["checks"]
        if ready.get("recs_loaded") == newest["version"]:
            return
        time.sleep(0.1)
    raise ValueError(f"the server did not load recs {newest['version']} within 10 s")


def recs_item(row: int) -> str:
    return f"it-{row}"


def recs_requests(host: str, keys: Keys) -> list[bytes]:
    """Half trained visitors, a quarter folding in their clicks, a quarter cold."""
    headers = {"X-Api-Key": keys.site}
    ids = [f"lt-u{i * 97}" for i in range(2 * RECS_VISITORS)]
    ids += [f"lt-f{i}" for i in range(RECS_VISITORS)]
    ids += [f"lt-c{i}" for i in range(RECS_VISITORS)]
    return [
        build_request("GET", f"/v1/recommendations?visitor_id={vid}&n=10", host, headers)
        for vid in ids
    ]


MODEL_SLOT = "loadtest_model"


def setup_decide_model(client: httpx.Client, keys: Keys) -> None:
    """A model-policy slot of 8 variants, its scorer (made by `python -m loadtests
    scorer-model`) activated, and visitors with varied browsing."""
    admin = {"X-Admin-Key": keys.admin}
    listing = client.get("/v1/models", headers=admin)
    listing.raise_for_status()
    versions = [
        v for v in listing.json()["versions"]["scorer"] if v["manifest"]["slot"] == MODEL_SLOT
    ]
    if not versions:
        raise ValueError("no scorer on the server: run python -m loadtests scorer-model")
    slot = {
        "variants": [{"id": f"v{i}", "content": {"n": i}} for i in range(8)],
        "default": "v0",
        "policy": "model",
        "exploration": {"epsilon": 0.05},
    }
    client.put(f"/v1/slots/{MODEL_SLOT}", headers=admin, json=slot).raise_for_status()
    version = versions[0]["version"]
    client.post(f"/v1/models/scorer/{version}/activate", headers=admin).raise_for_status()
    events = [
        {"type": "page_view", "visitor_id": visitor(i), "properties": {"category": "sports"}}
        for i in range(VISITORS)
        for _ in range(i % 16)
    ]
    for start in range(0, len(events), 500):
        batch = {"events": events[start : start + 500]}
        client.post("/v1/events", headers={"X-Api-Key": keys.site}, json=batch).raise_for_status()
    for _ in range(100):
        loaded = client.get("/v1/models", headers=admin).json()["loaded"]
        if loaded.get(f"scorer:{MODEL_SLOT}") == version:
            time.sleep(1.0)  # the definitions refresher (500 ms) sees the slot too
            return
        time.sleep(0.1)
    raise ValueError(f"the server did not load scorer {version} within 10 s")


def decide_model_requests(host: str, keys: Keys) -> list[bytes]:
    return _decide_requests(host, keys, MODEL_SLOT, {})


@dataclass(frozen=True)
class Target:
    setup: Callable[[httpx.Client, Keys], None]
    requests: Callable[[str, Keys], list[bytes]]
    items_per_request: int = 1  # events per batch, for an events-per-second figure


TARGETS: dict[str, Target] = {
    "decide": Target(setup_decide, decide_requests),
    "events": Target(setup_events, events_requests, EVENTS_PER_BATCH),
    "recommendations": Target(setup_recs, recs_requests),
    "decide-model": Target(setup_decide_model, decide_model_requests),
}
