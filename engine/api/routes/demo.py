"""The demo shop at `/demo`: a small shop on the demo catalogue that runs the browser
snippet against this engine, with a visitor switcher and a debug panel.

Mounted only when `OMOTENASHI_DEMO` is set (`omotenashi demo` sets it). Its pages are
plain static files in `engine/web/demo`; `config.json` tells them where the engine
is, the site key, the catalogue and the visitors the switcher offers.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response

from engine.api.deps import ServicesDep
from engine.api.responses import json_response
from engine.errors import NotFound
from training import demo_shop

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "shop.css": "text/css; charset=utf-8",
    "shop.js": "application/javascript",
}
# Same origin only: the shop works offline and shows nothing from anywhere else.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
ANTI_FLICKER_MS = 600


@cache
def asset(name: str) -> bytes:
    return resources.files("engine.web").joinpath("demo", name).read_bytes()


def served(name: str) -> Response:
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}
    return Response(asset(name), media_type=ASSETS[name], headers=headers)


@router.get("", response_class=Response)
@router.get("/", response_class=Response)
async def shop() -> Response:
    return served("index.html")


@router.get("/config.json")
async def config(request: Request, services: ServicesDep) -> Response:
    """What the shop's pages need: the engine, its site key, the catalogue and the
    visitors of the switcher (a newcomer is always offered; these are returning)."""
    settings = services.settings
    return json_response(
        {
            "endpoint": str(request.base_url).rstrip("/"),
            "siteKey": settings.site_keys[0],
            "consentMode": settings.consent_default,
            "antiFlickerMs": ANTI_FLICKER_MS,
            "slots": list(demo_shop.SLOTS),
            "categories": list(demo_shop.CATEGORIES),
            "catalogue": demo_shop.catalogue(),
            "visitors": [
                {"id": c.visitor_id, "label": c.label, "shows": c.shows}
                for c in demo_shop.RETURNING_CUSTOMERS
            ],
        }
    )


@router.get("/{name}", response_class=Response)
async def static(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"no demo file {name!r}")
    return served(name)
