"""The demo shop's routes (`/demo`, its files, `config.json`) exist only when
`OMOTENASHI_DEMO` is set; the shop needs nothing from anywhere else; and the returning
customers the switcher offers are shown what the switcher says."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from engine.api.routes.demo import ANTI_FLICKER_MS
from engine.app import create_app
from engine.cli.demo import load_returning_customers, load_shop
from tests.conftest import ADMIN, ADMIN_KEY, SITE, SITE_KEY, client_for, make_settings
from training import demo_shop

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

FILES = {
    "/demo": "text/html",
    "/demo/": "text/html",
    "/demo/index.html": "text/html",
    "/demo/shop.css": "text/css",
    "/demo/shop.js": "application/javascript",
}


@pytest.fixture
async def demo(redis_url: str, key_prefix: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `omotenashi demo` runs it (the demo setting on)."""
    settings = make_settings(
        redis_url, key_prefix, tmp_path / "data", artifacts_dir=tmp_path / "artifacts", demo=True
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as http:
        yield http


async def test_without_the_demo_setting_there_is_no_shop(client: httpx.AsyncClient) -> None:
    for path in [*FILES, "/demo/config.json"]:
        assert (await client.get(path)).status_code == 404, path


async def test_the_shop_and_its_files_are_served_under_a_same_origin_policy(
    demo: httpx.AsyncClient,
) -> None:
    for path, media_type in FILES.items():
        response = await demo.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type)
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self';" in policy  # no inline or remote scripts
    page = (await demo.get("/demo")).text
    assert 'data-omotenashi-slot="home_hero"' in page
    assert 'data-omotenashi-slot="cart_banner"' in page


async def test_everything_the_page_loads_comes_from_the_engine(demo: httpx.AsyncClient) -> None:
    page = (await demo.get("/demo")).text
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert "/sdk/omotenashi.js" in references
    for ref in references:
        assert ref.startswith(("/", "#", "data:")), ref  # no CDN, no other host
        if ref.startswith("/"):
            assert (await demo.get(ref)).status_code == 200, ref
    script = (await demo.get("/demo/shop.js")).text
    assert "http://" not in script
    assert "https://" not in script


async def test_only_the_shop_files_are_served(demo: httpx.AsyncClient) -> None:
    for path in ("/demo/nothing.js", "/demo/__init__.py", "/demo/%2e%2e%2fweb.py"):
        response = await demo.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


async def test_config_tells_the_shop_where_the_engine_is_and_what_it_sells(
    demo: httpx.AsyncClient,
) -> None:
    config = (await demo.get("/demo/config.json")).json()
    assert config["endpoint"] == "http://test"
    assert config["siteKey"] == SITE_KEY
    assert config["consentMode"] == "opt_out"
    assert config["antiFlickerMs"] == ANTI_FLICKER_MS
    assert config["slots"] == ["home_hero", "cart_banner"]
    assert config["categories"] == list(demo_shop.CATEGORIES)
    assert config["catalogue"] == demo_shop.catalogue()
    assert [v["id"] for v in config["visitors"]] == [
        "demo-sports-fan",
        "demo-fashionista",
        "demo-tech-buyer",
        "demo-engaged",
    ]
    assert all(v["label"] and v["shows"] for v in config["visitors"])


async def decided(demo: httpx.AsyncClient, visitor_id: str) -> dict[str, str]:
    body = {"visitor_id": visitor_id, "slots": list(demo_shop.SLOTS)}
    response = await demo.post("/v1/decide", headers=SITE, json=body)
    return {d["slot"]: d["variant"] for d in response.json()["decisions"]}


async def test_returning_customers_are_shown_what_the_switcher_says(
    demo: httpx.AsyncClient,
) -> None:
    await load_shop(demo, ADMIN_KEY)
    await load_returning_customers(demo, SITE_KEY)
    await load_returning_customers(demo, SITE_KEY)  # a second demo run adds nothing

    shown = {c.visitor_id: await decided(demo, c.visitor_id) for c in demo_shop.RETURNING_CUSTOMERS}
    assert shown == {
        "demo-sports-fan": {"home_hero": "sneaker_drop", "cart_banner": "bundle_discount"},
        "demo-fashionista": {"home_hero": "style_edit", "cart_banner": "bundle_discount"},
        "demo-tech-buyer": {"home_hero": "gadget_deals", "cart_banner": "free_shipping"},
        "demo-engaged": {"home_hero": "welcome", "cart_banner": "loyalty_points"},
    }
    for customer in demo_shop.RETURNING_CUSTOMERS:
        assert customer.shows.split(": ")[1].split(" ")[-1] in shown[customer.visitor_id].values()
        export = (await demo.get(f"/v1/visitors/{customer.visitor_id}", headers=ADMIN)).json()
        assert export["features"]["page_views"] == len(customer.viewed)
