"""Cross-origin use of the engine as a browser enforces it: a page on another site runs
the snippet against the engine; the origin in `OMOTENASHI_CORS_ORIGINS` gets its
decisions, any other origin is refused by the browser itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import DemoServer, OtherSite
from tests.conftest import SITE_KEY

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

# A shop on another site: the snippet from the engine, one slot, and what came back.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>another shop</title></head>
<body>
<section data-omotenashi-slot="home_hero"><h1 data-omotenashi-field="title">Hello</h1></section>
<script>
  var q = new URLSearchParams(location.search);
  var s = document.createElement("script");
  s.src = q.get("engine") + "/sdk/omotenashi.js";
  s.onload = function () {
    Omotenashi.on("decide", function (body) { window.outcome = body; });
    Omotenashi.init({ endpoint: q.get("engine"), siteKey: q.get("key"), device: "mobile" });
  };
  document.head.appendChild(s);
</script>
</body></html>
"""


@contextlib.contextmanager
def page_from(
    browser: Browser, origin: str, demo_server: DemoServer
) -> Iterator[tuple[Page, list[str]]]:
    """The other site's page, opened from `origin`, with the console errors it logs."""
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        query = urlencode({"engine": demo_server.base, "key": SITE_KEY})
        page.goto(f"{origin}/shop.html?{query}")
        yield page, errors
    finally:
        context.close()


def outcome(page: Page) -> dict[str, Any]:
    page.wait_for_function("() => window.outcome !== undefined", timeout=5000)
    found: dict[str, Any] = page.evaluate("window.outcome")
    return found


def test_the_browser_refuses_an_origin_the_engine_does_not_allow(
    browser: Browser, demo_server: DemoServer, other_site: OtherSite
) -> None:
    (other_site.folder / "shop.html").write_text(PAGE)

    with page_from(browser, other_site.allowed, demo_server) as (page, errors):
        allowed = outcome(page)
        title = page.text_content("h1")
    assert [d["variant"] for d in allowed["decisions"]] == ["app_download"]
    assert title == "Get the app: 10% off"
    assert errors == []

    with page_from(browser, other_site.refused, demo_server) as (page, errors):
        refused = outcome(page)
        title = page.text_content("h1")
    assert "decisions" not in refused
    assert "Failed to fetch" in refused["error"]
    assert title == "Hello"  # the page's own content stays
    assert any("blocked by CORS policy" in e for e in errors), errors
