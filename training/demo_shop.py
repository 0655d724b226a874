"""The demo shop: a small catalogue, two slots with targeting rules, rule segments,
and the simulated shoppers (with their true preferences) who visit it.

The rules encode a marketer's guesses; the personas' click rates are the truth those
guesses are tested against.
"""

from __future__ import annotations

from typing import Any

from training.simulator import Persona, World

CATEGORIES = ("sports", "fashion", "electronics", "home", "books")
_PRICES = {"sports": 60.0, "fashion": 45.0, "electronics": 180.0, "home": 35.0, "books": 15.0}
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
                    "title": f"{category.title()} item {i + 1}",
                    "tags": ["new"] if i < 2 else [],
                    "available": i != ITEMS_PER_CATEGORY - 1,
                }
            )
    return items


def _views(category: str, n: int) -> dict[str, Any]:
    return {"attr": f"features.views.{category}", "op": "gte", "value": n}


SLOTS: dict[str, dict[str, Any]] = {
    "home_hero": {
        "description": "The big banner on the home page",
        "variants": [
            {"id": "welcome", "content": {"title": "Welcome to Omotenashi Shop", "cta": "/new"}},
            {"id": "sneaker_drop", "content": {"title": "New running shoes", "cta": "/sports"}},
            {"id": "style_edit", "content": {"title": "The autumn edit", "cta": "/fashion"}},
            {"id": "gadget_deals", "content": {"title": "Gadget week", "cta": "/electronics"}},
            {"id": "app_download", "content": {"title": "Get the app: 10% off", "cta": "/app"}},
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
