"""The demo shop as a person uses it: Debian's Chromium opens `/demo` on `omotenashi
demo`, switches visitors and devices, declines consent, clicks a block, and meets an
engine that is slow or has lost Redis; the debug panel and the visitor's export show
what the engine decided and stored."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Route, expect

from tests.browser.conftest import DemoServer
from tests.conftest import ADMIN

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = {
    "viewport": {"width": 412, "height": 915},
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    "is_mobile": True,
    "has_touch": True,
}
LAPTOP = {"viewport": {"width": 1280, "height": 900}}
HERO = "[data-omotenashi-slot=home_hero]"
WELCOME = "Welcome to Omotenashi Shop"
ANTI_FLICKER_MS = 600  # engine.api.routes.demo.ANTI_FLICKER_MS, as config.json says


class Shop:
    """The demo shop open in one browser context, with what the page asked for and
    complained about."""

    def __init__(self, context: BrowserContext, base: str) -> None:
        self.context, self.base = context, base
        self.page = context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def open(self, route: str = "#/") -> None:
        self.page.goto(f"{self.base}/demo{route}")

    @property
    def hero(self) -> Any:
        return self.page.locator(HERO)

    def decided(self, outcome: str = "answered") -> None:
        expect(self.page.locator("#dbg-status")).to_have_attribute("data-outcome", outcome)

    def block(self, slot: str) -> Any:
        return self.page.locator(f"#debug .block[data-slot={slot}]")

    def visitor_id(self) -> str | None:
        cookies = {c["name"]: c["value"] for c in self.context.cookies()}
        return cookies.get("omo_vid")

    def switch(self, selector: str, value: str) -> None:
        with self.page.expect_navigation():
            self.page.select_option(selector, value)

    def screenshot(self, name: str, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


@contextlib.contextmanager
def shop(browser: Browser, base: str, device: dict[str, Any]) -> Iterator[Shop]:
    context = browser.new_context(**device)
    try:
        yield Shop(context, base)
    finally:
        context.close()


def export(base: str, visitor_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/visitors/{visitor_id}", headers=ADMIN, timeout=5)
    found: dict[str, Any] = response.raise_for_status().json()
    return found


def events(base: str, visitor_id: str) -> list[dict[str, Any]]:
    return [entry["event"] for entry in export(base, visitor_id)["events"]]


def eventually(check: Any, timeout: float = 5.0) -> Any:
    """The first truthy value of `check()` within `timeout` seconds (the engine writes
    decision records and beacons land a moment after the page moved on)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {check}")
        time.sleep(0.1)
    return found


def test_a_mobile_newcomer_is_shown_what_the_targeting_rule_gives(
    browser: Browser, demo_server: DemoServer
) -> None:
    with shop(browser, demo_server.base, PHONE) as s:
        s.open()
        s.decided()
        expect(s.hero).to_have_attribute("data-omotenashi-variant", "app_download")
        expect(s.hero.locator("h1")).to_have_text("Get the app: 10% off")
        expect(s.block("home_hero").locator(".variant")).to_have_text("app_download")
        expect(s.page.locator("#dbg-segments")).to_have_text("mobile, newcomer")
        expect(s.page.locator("#dbg-device")).to_have_text("mobile (browser)")
        s.screenshot("home-mobile-newcomer.png", full_page=False)
        assert s.errors == []


def test_switching_visitor_and_device_changes_what_the_hero_shows(
    browser: Browser, demo_server: DemoServer
) -> None:
    with shop(browser, demo_server.base, LAPTOP) as s:
        s.open()
        s.decided()
        expect(s.hero).to_have_attribute("data-omotenashi-variant", "welcome")
        s.page.click("#consent-accept")
        expect(s.page.locator("#consent")).to_be_hidden()
        expect(s.page.locator(".strip-title")).to_have_text("Popular right now")
        s.screenshot("home-desktop-newcomer.png")

        s.switch("#visitor", "demo-sports-fan")
        s.decided()
        expect(s.hero).to_have_attribute("data-omotenashi-variant", "sneaker_drop")
        expect(s.hero.locator("h1")).to_have_text("New running shoes")
        expect(s.page.locator("#dbg-visitor")).to_have_text("demo-sports-fan")
        expect(s.page.locator(".strip-title")).to_have_text("Recommended for you")
        expect(s.page.locator("[data-omotenashi-item]")).to_have_count(6)
        s.screenshot("home-sports-fan.png")

        s.switch("#device", "mobile")  # the switcher's phone, then a new visitor on it
        s.switch("#visitor", "")
        s.decided()
        expect(s.hero).to_have_attribute("data-omotenashi-variant", "app_download")
        expect(s.page.locator("#dbg-device")).to_have_text("mobile (switcher)")
        assert s.visitor_id() not in (None, "demo-sports-fan")

        s.switch("#visitor", "demo-engaged")
        s.page.click(".cart-link")
        s.decided()
        expect(s.page.locator("[data-omotenashi-slot=cart_banner]")).to_have_text(
            "Double points today"
        )
        expect(s.block("cart_banner").locator(".variant")).to_have_text("loyalty_points")
        assert s.errors == []


def test_declining_consent_shows_defaults_and_stores_nothing(
    browser: Browser, demo_server: DemoServer
) -> None:
    base = demo_server.base
    with shop(browser, base, PHONE) as s:
        s.open()
        s.decided()
        expect(s.hero).to_have_attribute("data-omotenashi-variant", "app_download")
        visitor = s.visitor_id()
        assert visitor is not None
        # the decide before the choice is on record (written a moment later)
        eventually(lambda: [e for e in events(base, visitor) if e["type"] == "decision"])

        s.page.click("#consent-decline")
        s.decided("skipped")
        stored = events(base, visitor)
        assert export(base, visitor)["consent"] == {"personalization": False, "analytics": False}
        assert s.visitor_id() is None

        s.requests.clear()
        s.page.reload()
        s.decided("skipped")
        expect(s.hero.locator("h1")).to_have_text(WELCOME)  # the page's own default
        assert s.hero.get_attribute("data-omotenashi-variant") is None
        expect(s.block("home_hero").locator(".variant")).to_have_text("page default")
        expect(s.page.locator("#consent")).to_be_hidden()
        s.hero.click()  # and browse on: a category, a product, the cart
        s.page.click(".product >> nth=0")
        s.page.click("#add-to-cart")
        s.page.evaluate("Omotenashi.flush()")
        time.sleep(0.5)

        assert s.visitor_id() is None
        assert events(base, visitor) == stored
        engine_calls = [u for u in s.requests if "/v1/" in u]
        assert engine_calls == [], engine_calls  # not even a throwaway id went out
        assert s.errors == []


def test_a_click_on_a_block_is_attributed_to_its_decision(
    browser: Browser, demo_server: DemoServer
) -> None:
    base = demo_server.base
    with shop(browser, base, LAPTOP) as s:
        s.open()
        s.decided()
        token = s.block("home_hero").get_attribute("data-token")
        visitor = s.visitor_id()
        assert token
        assert visitor
        assert s.hero.get_attribute("data-omotenashi-token") == token

        s.hero.click()  # the snippet sends the click by beacon; the shop moves on
        expect(s.page).to_have_url(f"{base}/demo#/c/new")

        def click_on_record() -> list[dict[str, Any]]:
            return [e for e in events(base, visitor) if e["type"] == "click"]

        clicks = eventually(click_on_record)
        assert [c["token"] for c in clicks] == [token]
        decision = [e for e in events(base, visitor) if e["type"] == "decision"]
        assert [d["token"] for d in decision if d["properties"]["slot"] == "home_hero"] == [token]
        assert s.errors == []


def test_a_walk_through_the_shop_uses_only_the_engine_and_ends_in_a_purchase(
    browser: Browser, demo_server: DemoServer
) -> None:
    base = demo_server.base
    with shop(browser, base, LAPTOP) as s:
        s.open()
        s.decided()
        s.page.click("#nav >> text=Sports")
        expect(s.page.locator("h1")).to_have_text("Sports")
        s.page.click(".product >> nth=1")
        expect(s.page.locator(".detail h1")).to_have_text("Featherweight racer")
        s.page.click("#add-to-cart")
        expect(s.page.locator("#cart-count")).to_have_text("1")
        s.page.click(".cart-link")
        s.decided()
        expect(s.page.locator("#cart-total")).to_have_text("$42.00")
        s.page.click("#purchase")
        expect(s.page.locator(".message h1")).to_have_text("Thank you!")
        visitor = s.visitor_id()
        assert visitor

        def purchase() -> list[dict[str, Any]]:
            return [e for e in events(base, visitor) if e["type"] == "purchase"]

        [bought] = eventually(purchase)
        assert bought["value"] == 42.0
        types = {e["type"] for e in events(base, visitor)}
        assert {"page_view", "add_to_cart", "impression"} <= types
        assert {urlsplit(u).netloc for u in s.requests} == {urlsplit(base).netloc}
        assert s.errors == []


def held(routes: list[Route]) -> Callable[[Route], None]:
    """A route handler that never answers: the engine is too slow for this page."""

    def hold(route: Route) -> None:
        routes.append(route)

    return hold


def test_a_slow_engine_leaves_the_page_default_within_the_anti_flicker_time(
    browser: Browser, demo_server: DemoServer
) -> None:
    with shop(browser, demo_server.base, PHONE) as s:
        waiting: list[Route] = []
        s.page.route("**/v1/decide", held(waiting))
        s.open()
        s.decided("timedOut")
        assert len(waiting) == 1
        waited = int(s.page.locator("#dbg-status").get_attribute("data-ms") or 0)
        assert ANTI_FLICKER_MS <= waited <= ANTI_FLICKER_MS + 400, waited
        expect(s.hero).to_be_visible()
        expect(s.hero.locator("h1")).to_have_text(WELCOME)
        expect(s.hero).not_to_have_attribute("aria-busy", "true")
        assert s.hero.get_attribute("data-omotenashi-variant") is None
        s.page.unroute_all(behavior="ignoreErrors")


def test_without_redis_the_engine_answers_with_the_defaults_at_once(
    browser: Browser, fallback_server: str
) -> None:
    with shop(browser, fallback_server, PHONE) as s:
        s.context.add_cookies(
            [
                {"name": "omo_vid", "value": "demo-sports-fan", "url": fallback_server},
                {"name": "omo_consent", "value": "p1a1", "url": fallback_server},
            ]
        )
        s.open()
        s.decided()
        waited = int(s.page.locator("#dbg-status").get_attribute("data-ms") or 0)
        assert waited < ANTI_FLICKER_MS
        expect(s.hero).to_have_attribute("data-omotenashi-variant", "welcome")
        expect(s.hero.locator("h1")).to_have_text(WELCOME)
        expect(s.block("home_hero").locator("dd >> nth=1")).to_have_text("fallback")
        # no recommender without Redis: the strip keeps the page's own picks
        expect(s.block("recommendations").locator("dd")).to_have_text("unavailable")
        expect(s.page.locator("[data-omotenashi-list] .default")).to_have_count(6)
