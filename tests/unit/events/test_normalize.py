"""From client events to stored events: per-event validation and pseudonymization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from engine.decisions.tokens import DecisionToken, TokenSigner
from engine.events.normalize import MAX_CLOCK_SKEW_S, validate_batch
from engine.privacy.pseudonym import Pseudonymizer
from models.events import Event

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
Validate = Callable[..., tuple[list[Event], list[tuple[int, str]]]]


@pytest.fixture
def validate(pseudonymize: Pseudonymizer, signer: TokenSigner) -> Validate:
    """`validate_batch` at a fixed now, taking the events as arguments."""

    def run(*items: object) -> tuple[list[Event], list[tuple[int, str]]]:
        return validate_batch(items, pseudonymize=pseudonymize, signer=signer, now=NOW)

    return run


def one(validate: Validate, item: dict[str, Any]) -> Event:
    accepted, rejected = validate(item)
    assert rejected == []
    (only,) = accepted
    return only


def view(**fields: Any) -> dict[str, Any]:
    return {"type": "page_view", "visitor_id": "visitor-1", **fields}


def purchase(value: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "purchase",
        "visitor_id": "visitor-1",
        "properties": {
            "order_id": "o-1",
            "items": [
                {"item_id": "sku-1", "price": 19.99, "qty": 3},
                {"item_id": "sku-2", "price": 0.01},
            ],
        },
    }
    if value is not None:
        item["value"] = value
    return item


# --- accepted -----------------------------------------------------------------------


def test_valid_event_becomes_a_pseudonymized_event(
    validate: Validate, pseudonymize: Pseudonymizer
) -> None:
    event = one(validate, view(channel="app", event_id="e-1", properties={"category": "shoes"}))
    assert event == Event(
        type="page_view",
        pid=pseudonymize("visitor-1"),
        ts=NOW,
        channel="app",
        event_id="e-1",
        properties={"category": "shoes"},
    )


def test_raw_visitor_id_is_not_kept(validate: Validate) -> None:
    event = one(validate, view(visitor_id="alice@example.com"))
    assert b"alice" not in orjson.dumps(event.to_record())


def test_channel_defaults_to_web(validate: Validate) -> None:
    assert one(validate, view()).channel == "web"


@pytest.mark.parametrize(
    "ts",
    [
        "2023-11-14T21:13:20Z",
        "2023-11-15T06:13:20+09:00",
        "2023-11-14T21:13:20",  # no zone: read as UTC
        1_699_996_400,
        1_699_996_400.0,
    ],
)
def test_iso_and_unix_timestamps_are_both_accepted(validate: Validate, ts: object) -> None:
    assert one(validate, view(ts=ts)).ts == NOW - 3600


def test_missing_timestamp_means_now(validate: Validate) -> None:
    assert one(validate, view()).ts == NOW


def test_timestamp_within_the_allowed_clock_skew_is_accepted(validate: Validate) -> None:
    assert one(validate, view(ts=NOW + MAX_CLOCK_SKEW_S)).ts == NOW + MAX_CLOCK_SKEW_S


def test_purchase_value_is_filled_from_its_items(validate: Validate) -> None:
    assert one(validate, purchase()).value == 59.98


def test_purchase_value_given_by_the_client_is_kept(validate: Validate) -> None:
    assert one(validate, purchase(value=50)).value == 50


def test_feedback_text_is_reduced_to_counts(validate: Validate) -> None:
    event = one(
        validate,
        {"type": "feedback", "visitor_id": "v", "properties": {"rating": 2, "text": "too slow"}},
    )
    assert event.properties == {"rating": 2, "text_length": 8, "text_words": 2}


def test_feedback_text_is_kept_when_the_site_retains_text(
    pseudonymize: Pseudonymizer, signer: TokenSigner
) -> None:
    item = {"type": "feedback", "visitor_id": "v", "properties": {"nps": 9, "text": "great"}}
    (event,), _ = validate_batch(
        [item], pseudonymize=pseudonymize, signer=signer, now=NOW, retain_text=True
    )
    assert event.properties == {"nps": 9, "text": "great", "text_length": 5, "text_words": 1}


def test_events_without_an_id_get_a_unique_one(validate: Validate) -> None:
    accepted, _ = validate(view(), view())
    ids = [e.event_id for e in accepted]
    assert all(i is not None and i.startswith("srv-") for i in ids)
    assert len(set(ids)) == 2


def test_identify_replaces_the_customer_id_by_its_pseudonym(
    validate: Validate, pseudonymize: Pseudonymizer
) -> None:
    event = one(
        validate,
        {
            "type": "identify",
            "visitor_id": "cookie-1",
            "properties": {"customer_id": "CRM-000042", "traits": {"tier": "gold"}},
        },
    )
    assert event.properties == {
        "customer_pid": pseudonymize("CRM-000042"),
        "traits": {"tier": "gold"},
    }
    assert b"CRM-000042" not in orjson.dumps(event.to_record())


def test_event_with_a_valid_token_is_accepted_and_keeps_it(
    validate: Validate, signer: TokenSigner, decision_token: DecisionToken
) -> None:
    token = signer.sign(decision_token)
    event = one(validate, {"type": "click", "visitor_id": "v", "token": token})
    assert event.token == token


# --- rejected -----------------------------------------------------------------------


def test_invalid_events_are_listed_by_index_and_the_valid_ones_kept(validate: Validate) -> None:
    accepted, rejected = validate(
        view(),
        {"type": "page_view"},
        "not an event",
        view(event_id="e-4"),
        {"type": "teleport", "visitor_id": "v"},
    )
    assert accepted[1].event_id == "e-4"
    assert len(accepted) == 2
    assert [index for index, _ in rejected] == [1, 2, 4]
    messages = dict(rejected)
    assert "visitor_id" in messages[1]
    assert "teleport" in messages[4]


def test_timestamp_too_far_in_the_future_is_refused(validate: Validate) -> None:
    accepted, rejected = validate(view(ts=NOW + MAX_CLOCK_SKEW_S + 1))
    assert accepted == []
    assert rejected == [(0, "ts: more than 5 minutes in the future")]


def test_iso_timestamp_in_the_future_is_refused(validate: Validate) -> None:
    _, rejected = validate(view(ts="2023-11-15T00:00:00Z"))
    assert rejected == [(0, "ts: more than 5 minutes in the future")]


def test_timestamp_before_1970_is_refused(validate: Validate) -> None:
    _, rejected = validate(view(ts=-1))
    assert rejected == [(0, "ts: before 1970")]


def test_event_with_a_bad_token_is_refused_alone(
    validate: Validate, decision_token: DecisionToken
) -> None:
    forged = TokenSigner(b"someone-else").sign(decision_token)
    accepted, rejected = validate(
        {"type": "click", "visitor_id": "v", "token": forged},
        {"type": "click", "visitor_id": "v", "token": "1.garbage"},
        view(),
    )
    assert [e.type for e in accepted] == ["page_view"]
    assert rejected == [(0, "token signature does not match"), (1, "malformed token")]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (view(properties={"category": "Shoes"}), "category"),
        (view(properties={"email": "a@b.c"}), "email"),
        ({"type": "feedback", "visitor_id": "v", "properties": {"text": "hi"}}, "rating"),
        ({"type": "click", "visitor_id": "v"}, "token or an item_id"),
        ({"type": "impression", "visitor_id": "v"}, "token"),
        ({"type": "custom", "visitor_id": "v", "properties": {"name": "x", "note": "hi"}}, "note"),
        (view(value=float("inf")), "value"),
    ],
)
def test_event_of_the_wrong_shape_is_refused_with_a_message(
    validate: Validate, item: dict[str, Any], field: str
) -> None:
    accepted, rejected = validate(item)
    assert accepted == []
    [(index, message)] = rejected
    assert index == 0
    assert field in message


def test_a_boolean_timestamp_is_refused(validate: Validate) -> None:
    accepted, rejected = validate(view(ts=True))
    assert accepted == []
    assert "ts" in rejected[0][1]
