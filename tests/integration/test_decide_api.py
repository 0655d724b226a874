"""POST /v1/decide over the in-process app and the real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis

from engine.decisions.tokens import TokenSigner
from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from tests.conftest import ADMIN, SECRET, SITE

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

HERO: dict[str, Any] = {
    "variants": [
        {"id": "generic", "content": {"title": "Welcome"}},
        {"id": "sporty", "content": {"title": "Run faster"}},
        {"id": "mobile", "content": {"title": "Get the app"}},
    ],
    "default": "generic",
    "policy": "rules",
    "rules": [
        {"when": {"attr": "features.views.sports", "op": "gte", "value": 2}, "variant": "sporty"},
        {"when": {"attr": "context.device", "op": "eq", "value": "mobile"}, "variant": "mobile"},
    ],
}
BANNER: dict[str, Any] = {
    "variants": [{"id": "plain", "content": {}}, {"id": "vip", "content": {"badge": "VIP"}}],
    "default": "plain",
    "rules": [{"when": {"attr": "segments", "op": "contains", "value": "fans"}, "variant": "vip"}],
}
FANS = {"when": {"attr": "features.page_views", "op": "gte", "value": 2}}


async def setup_shop(client: httpx.AsyncClient) -> None:
    for path, body in (
        ("/v1/segments/fans", FANS),
        ("/v1/slots/hero", HERO),
        ("/v1/slots/banner", BANNER),
    ):
        response = await client.put(path, headers=ADMIN, json=body)
        assert response.status_code == 201, response.text


async def decide(
    client: httpx.AsyncClient,
    visitor: str,
    context: dict[str, Any] | None = None,
    slots: tuple[str, ...] = ("hero", "banner"),
) -> dict[str, Any]:
    response = await client.post(
        "/v1/decide",
        headers=SITE,
        json={"visitor_id": visitor, "slots": list(slots), "context": context or {}},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def view(client: httpx.AsyncClient, visitor: str, category: str, n: int) -> None:
    events = [{"type": "page_view", "visitor_id": visitor, "properties": {"category": category}}]
    response = await client.post("/v1/events", headers=SITE, json={"events": events * n})
    assert response.status_code == 202, response.text


async def test_unknown_visitor_gets_every_slot_default(client: httpx.AsyncClient) -> None:
    await setup_shop(client)
    body = await decide(client, "never-seen")
    assert [(d["slot"], d["variant"], d["policy"]) for d in body["decisions"]] == [
        ("hero", "generic", "rules"),
        ("banner", "plain", "rules"),
    ]
    assert body["decisions"][0]["content"] == {"title": "Welcome"}
    assert body["segments"] == []


async def test_first_matching_rule_wins_using_stored_features(client: httpx.AsyncClient) -> None:
    await setup_shop(client)
    await view(client, "runner", "sports", 2)
    body = await decide(client, "runner", {"device": "mobile"})
    hero, banner = body["decisions"]
    # both rules match; the sports rule comes first
    assert hero["variant"] == "sporty"
    assert banner["variant"] == "vip"
    assert body["segments"] == ["fans"]


async def test_context_rule_applies_to_a_new_visitor(client: httpx.AsyncClient) -> None:
    await setup_shop(client)
    body = await decide(client, "phone-user", {"device": "mobile"}, slots=("hero",))
    assert body["decisions"][0]["variant"] == "mobile"


async def test_token_is_signed_and_records_the_decision(client: httpx.AsyncClient) -> None:
    await setup_shop(client)
    body = await decide(client, "visitor-7", slots=("hero",))
    keyring = Keyring.from_secret(SECRET)
    token = TokenSigner(keyring.tokens).verify(body["decisions"][0]["token"])
    assert token.pid == Pseudonymizer(keyring.pseudonyms)("visitor-7")
    assert (token.slot, token.variant, token.policy, token.propensity) == (
        "hero",
        "generic",
        "rules",
        1.0,
    )
    assert token.decision_id == body["decision_id"]


async def test_unknown_slot_is_404_and_names_it(client: httpx.AsyncClient) -> None:
    await setup_shop(client)
    response = await client.post(
        "/v1/decide", headers=SITE, json={"visitor_id": "v", "slots": ["hero", "nope"]}
    )
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "unknown slots: nope"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_request"),
        (b'{"visitor_id": "v"}', 422, "invalid_input"),
        (b'{"visitor_id": "", "slots": ["hero"]}', 422, "invalid_input"),
        (b'{"visitor_id": "v", "slots": []}', 422, "invalid_input"),
        (b'{"visitor_id": "v", "slots": ["hero"], "context": {"x": [1]}}', 422, "invalid_input"),
        (b'{"visitor_id": "v", "slots": ["hero"], "extra": 1}', 422, "invalid_input"),
    ],
)
async def test_bad_decide_requests_get_json_errors_and_store_nothing(
    client: httpx.AsyncClient,
    redis_sync: redis.Redis,
    key_prefix: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    await setup_shop(client)
    before = sorted(redis_sync.scan_iter(match=f"{key_prefix}:*"))
    response = await client.post(
        "/v1/decide", headers={**SITE, "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert sorted(redis_sync.scan_iter(match=f"{key_prefix}:*")) == before


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Api-Key": "wrong"}, 401), (ADMIN, 401), (SITE, 200)],
)
async def test_decide_needs_a_site_key(
    client: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    await setup_shop(client)
    response = await client.post(
        "/v1/decide", headers=headers, json={"visitor_id": "v", "slots": ["hero"]}
    )
    assert response.status_code == status


async def test_a_huge_integer_in_the_context_is_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    await client.put(
        "/v1/slots/num",
        headers=ADMIN,
        json={
            "variants": [{"id": "a"}, {"id": "b"}],
            "default": "a",
            "rules": [{"when": {"attr": "context.n", "op": "eq", "value": 1}, "variant": "b"}],
        },
    )
    response = await client.post(
        "/v1/decide",
        headers={**SITE, "Content-Type": "application/json"},
        content=b'{"visitor_id": "v", "slots": ["num"], "context": {"n": ' + b"9" * 400 + b"}}",
    )
    assert response.status_code == 200
    assert response.json()["decisions"][0]["variant"] == "a"
