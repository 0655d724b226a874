"""The demo shop: a small catalogue, two slots with targeting rules, rule segments,
and the simulated shoppers (with their true preferences) who visit it.

The rules encode a marketer's guesses; the personas' click rates are the truth those
guesses are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.simulator import Persona, World

CATEGORIES = ("sports", "fashion", "electronics", "home", "books")
_PRICES = {"sports": 60.0, "fashion": 45.0, "electronics": 180.0, "home": 35.0, "books": 15.0}
_TITLES = {
    "sports": (
        "Trail running shoes",
        "Featherweight racer",
        "Yoga mat",
        "Cycling gloves",
        "Water bottle",
        "Training tee",
        "Tennis racket",
        "Climbing chalk bag",
    ),
    "fashion": (
        "Wool overcoat",
        "Linen shirt",
        "Denim jacket",
        "Silk scarf",
        "Leather belt",
        "Canvas tote",
        "Knit beanie",
        "Chelsea boots",
    ),
    "electronics": (
        "Noise-cancelling headphones",
        "Smartwatch",
        "E-reader",
        "Bluetooth speaker",
        "Action camera",
        "Mechanical keyboard",
        "Power bank",
        "Drone",
    ),
    "home": (
        "Ceramic teapot",
        "Linen bedding",
        "Desk lamp",
        "Cast-iron pan",
        "Wool throw",
        "Plant pot",
        "Scented candle",
        "Wall clock",
    ),
    "books": (
        "The Art of Hospitality",
        "Running Every Day",
        "A Year of Tea",
        "Pocket Atlas",
        "Cooking for Friends",
        "Short Stories",
        "Field Guide to Birds",
        "Poems for Mornings",
    ),
}
ITEMS_PER_CATEGORY = 8


def catalogue() -> list[dict[str, Any]]:
    """Forty items, eight per category, with stable ids and prices."""
    items = []
    for category in CATEGORIES:
        for i in range(ITEMS_PER_CATEGORY):
            items.append(
                {
                    "item_id": f"{category}-{i:02d}",
                    "category": category,
                    "price": round(_PRICES[category] * (0.6 + 0.1 * i), 2),
                    "title": _TITLES[category][i],
                    "tags": ["new"] if i < 2 else [],
                    "available": i != ITEMS_PER_CATEGORY - 1,
                }
            )
    return items


WELCOME = "Small things, chosen with care."


def _hero(title: str, subtitle: str, cta: str) -> dict[str, str]:
    return {"title": title, "subtitle": subtitle, "cta": cta}


def _views(category: str, n: int) -> dict[str, Any]:
    return {"attr": f"features.views.{category}", "op": "gte", "value": n}


SLOTS: dict[str, dict[str, Any]] = {
    "home_hero": {
        "description": "The big banner on the home page",
        "variants": [
            {"id": "welcome", "content": _hero("Welcome to Omotenashi Shop", WELCOME, "/new")},
            {
                "id": "sneaker_drop",
                "content": _hero("New running shoes", "Light, fast, made for trails.", "/sports"),
            },
            {
                "id": "style_edit",
                "content": _hero("The autumn edit", "Wool, linen and warm colours.", "/fashion"),
            },
            {
                "id": "gadget_deals",
                "content": _hero("Gadget week", "Headphones, watches and more.", "/electronics"),
            },
            {
                "id": "app_download",
                "content": _hero("Get the app: 10% off", "Your first order on the app.", "/app"),
            },
        ],
        "default": "welcome",
        "policy": "rules",
        "rules": [
            {"when": _views("sports", 3), "variant": "sneaker_drop"},
            {"when": _views("fashion", 3), "variant": "style_edit"},
            {"when": _views("electronics", 2), "variant": "gadget_deals"},
            {
                "when": {
                    "all": [
                        {"attr": "context.device", "op": "eq", "value": "mobile"},
                        {"attr": "segments", "op": "contains", "value": "newcomer"},
                    ]
                },
                "variant": "app_download",
            },
        ],
    },
    "cart_banner": {
        "description": "Strip above the cart",
        "variants": [
            {"id": "free_shipping", "content": {"text": "Free shipping over $50"}},
            {"id": "bundle_discount", "content": {"text": "Buy 2, save 15%"}},
            {"id": "loyalty_points", "content": {"text": "Double points today"}},
        ],
        "default": "free_shipping",
        "policy": "rules",
        "rules": [
            {
                "when": {"attr": "segments", "op": "contains", "value": "engaged"},
                "variant": "loyalty_points",
            },
            {
                "when": {"attr": "features.page_views", "op": "gte", "value": 4},
                "variant": "bundle_discount",
            },
        ],
    },
}

SEGMENTS: dict[str, dict[str, Any]] = {
    "newcomer": {
        "description": "Never seen before this request",
        "when": {"attr": "features.events", "op": "lt", "value": 1},
    },
    "engaged": {
        "description": "Ten or more page views",
        "when": {"attr": "features.page_views", "op": "gte", "value": 10},
    },
    "mobile": {
        "description": "On a phone right now",
        "when": {"attr": "context.device", "op": "eq", "value": "mobile"},
    },
}


@dataclass(frozen=True)
class ReturningCustomer:
    """A fixed visitor of the demo shop, with a history that makes the rules fire.

    The demo's visitor switcher sets the shop's visitor cookie to `visitor_id`, so a
    person sees what this customer is shown.
    """

    visitor_id: str
    label: str
    shows: str  # what the rules give them, in words, for the switcher
    viewed: tuple[str, ...]  # item ids of the product pages in their history


def _viewed(category: str, n: int) -> tuple[str, ...]:
    return tuple(f"{category}-{i % ITEMS_PER_CATEGORY:02d}" for i in range(n))


RETURNING_CUSTOMERS: tuple[ReturningCustomer, ...] = (
    ReturningCustomer(
        "demo-sports-fan",
        "Returning sports fan",
        "4 sports pages: home_hero sneaker_drop",
        _viewed("sports", 4) + _viewed("books", 1),
    ),
    ReturningCustomer(
        "demo-fashionista",
        "Returning fashionista",
        "4 fashion pages: home_hero style_edit",
        _viewed("fashion", 4) + _viewed("home", 1),
    ),
    ReturningCustomer(
        "demo-tech-buyer",
        "Returning tech buyer",
        "2 electronics pages: home_hero gadget_deals",
        _viewed("electronics", 2),
    ),
    ReturningCustomer(
        "demo-engaged",
        "Engaged regular",
        "12 pages, segment engaged: cart_banner loyalty_points",
        _viewed("home", 6) + _viewed("books", 6),
    ),
)


def history_events(customer: ReturningCustomer) -> list[dict[str, Any]]:
    """The customer's past product page views as events for `POST /v1/events`.

    Event ids are fixed, so loading the history again within the engine's
    deduplication window adds nothing.
    """
    return [
        {
            "type": "page_view",
            "visitor_id": customer.visitor_id,
            "event_id": f"{customer.visitor_id}-history-{n}",
            "item_id": item_id,
            "properties": {"category": item_id.rsplit("-", 1)[0], "url": f"/demo#/p/{item_id}"},
        }
        for n, item_id in enumerate(customer.viewed)
    ]


def world() -> World:
    """The shoppers. Each persona clicks most on the hero made for it."""
    items = {c: [i["item_id"] for i in catalogue() if i["category"] == c] for c in CATEGORIES}
    return World(
        personas=(
            Persona(
                name="sports_fan",
                share=0.30,
                devices={"mobile": 0.6, "desktop": 0.4},
                interests={"sports": 0.7, "fashion": 0.1, "electronics": 0.1, "books": 0.1},
                views_per_visit=4.0,
                click_rates={
                    "home_hero": {
                        "welcome": 0.03,
                        "sneaker_drop": 0.12,
                        "style_edit": 0.02,
                        "gadget_deals": 0.03,
                        "app_download": 0.05,
                    },
                    "cart_banner": {
                        "free_shipping": 0.05,
                        "bundle_discount": 0.07,
                        "loyalty_points": 0.06,
                    },
                },
                conversion_given_click=0.25,
                order_value=70.0,
            ),
            Persona(
                name="fashionista",
                share=0.25,
                devices={"mobile": 0.75, "desktop": 0.25},
                interests={"fashion": 0.75, "home": 0.15, "books": 0.1},
                views_per_visit=5.0,
                click_rates={
                    "home_hero": {
                        "welcome": 0.04,
                        "sneaker_drop": 0.03,
                        "style_edit": 0.14,
                        "gadget_deals": 0.01,
                        "app_download": 0.06,
                    },
                    "cart_banner": {
                        "free_shipping": 0.08,
                        "bundle_discount": 0.09,
                        "loyalty_points": 0.10,
                    },
                },
                conversion_given_click=0.3,
                order_value=55.0,
            ),
            Persona(
                name="tech_buyer",
                share=0.20,
                devices={"mobile": 0.3, "desktop": 0.7},
                interests={"electronics": 0.8, "books": 0.1, "home": 0.1},
                views_per_visit=3.0,
                click_rates={
                    "home_hero": {
                        "welcome": 0.02,
                        "sneaker_drop": 0.01,
                        "style_edit": 0.01,
                        "gadget_deals": 0.11,
                        "app_download": 0.02,
                    },
                    "cart_banner": {
                        "free_shipping": 0.06,
                        "bundle_discount": 0.04,
                        "loyalty_points": 0.03,
                    },
                },
                conversion_given_click=0.2,
                order_value=210.0,
            ),
            Persona(
                name="browser",
                share=0.25,
                devices={"mobile": 0.5, "desktop": 0.5},
                interests=dict.fromkeys(CATEGORIES, 0.2),
                views_per_visit=1.5,
                click_rates={
                    "home_hero": {
                        "welcome": 0.03,
                        "sneaker_drop": 0.02,
                        "style_edit": 0.02,
                        "gadget_deals": 0.02,
                        "app_download": 0.04,
                    },
                    "cart_banner": {
                        "free_shipping": 0.04,
                        "bundle_discount": 0.02,
                        "loyalty_points": 0.02,
                    },
                },
                conversion_given_click=0.1,
                order_value=30.0,
            ),
        ),
        items_by_category=items,
    )
