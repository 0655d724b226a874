"""What can be load-tested: each target prepares the engine through the API, then
gives the request bytes to send. Adding a target is adding one entry to TARGETS."""

from __future__ import annotations

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
    headers = {"X-Api-Key": keys.site, "Content-Type": "application/json"}
    return [
        build_request(
            "POST",
            "/v1/decide",
            host,
            headers,
            orjson.dumps(
                {"visitor_id": visitor(i), "slots": [SLOT], "context": {"device": "mobile"}}
            ),
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


@dataclass(frozen=True)
class Target:
    setup: Callable[[httpx.Client, Keys], None]
    requests: Callable[[str, Keys], list[bytes]]
    items_per_request: int = 1  # events per batch, for an events-per-second figure


TARGETS: dict[str, Target] = {
    "decide": Target(setup_decide, decide_requests),
    "events": Target(setup_events, events_requests, EVENTS_PER_BATCH),
}
