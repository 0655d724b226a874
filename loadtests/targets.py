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


@dataclass(frozen=True)
class Target:
    setup: Callable[[httpx.Client, Keys], None]
    requests: Callable[[str, Keys], list[bytes]]


TARGETS: dict[str, Target] = {
    "decide": Target(setup_decide, decide_requests),
}
